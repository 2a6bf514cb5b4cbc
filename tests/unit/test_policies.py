"""Every `test_` rule in the `_test.rego` files passes in the embedded engine (regopy).

regopy 1.5.2 crashes on `with input as` over most policies (docs/decisions/0003), so each
test, written as `[not] <rule> with input as <JSON literal>`, runs here by setting that input
and querying the rule: the same semantics OPA's `opa test` gives the file as it stands.
"""

import json
import re
from pathlib import Path

import pytest
from regopy import Interpreter

from services.consent.domain import age_on
from services.consent.engine import POLICY_DIR, RegopyEngine

TEST_FILES = sorted(POLICY_DIR.glob("*_test.rego"))
TEST_RULE = re.compile(r"^(test_\w+) if \{\n\t(not )?([\w.]+) with input as (\{.*\})\n\}$", re.M)


def rego_tests() -> list[tuple[str, str, bool, str, str]]:
    found = []
    for path in TEST_FILES:
        text = path.read_text()
        package = re.search(r"^package ([\w.]+)", text, re.M).group(1)
        names = re.findall(r"^(test_\w+) if", text, re.M)
        parsed = {m.group(1): m for m in TEST_RULE.finditer(text)}
        for name in names:
            assert name in parsed, f"{path.name}: {name} is not `[not] rule with input as {{...}}`"
            m = parsed[name]
            found.append((path.name, name, bool(m.group(2)), m.group(3), m.group(4), package))
    return found


@pytest.fixture(scope="module")
def interpreter() -> Interpreter:
    interp = Interpreter()
    interp.add_data_json((POLICY_DIR / "data.json").read_text())
    for path in sorted(POLICY_DIR.glob("*.rego")):
        # The test rules themselves (with `with`) are left out; their helper rules stay.
        interp.add_module(path.name, TEST_RULE.sub("", path.read_text()))
    return interp


@pytest.mark.parametrize(
    ("file", "name", "negated", "rule", "literal", "package"),
    rego_tests(),
    ids=[f"{t[0]}::{t[1]}" for t in rego_tests()],
)
def test_rego_policy_test_passes(
    interpreter: Interpreter,
    file: str,
    name: str,
    negated: bool,
    rule: str,
    literal: str,
    package: str,
) -> None:
    interpreter.set_input(json.loads(literal))
    head, _, rest = rule.partition(".")
    # `share.allow` refers to the imported package data.ema.share; a bare name to the test's own.
    ref = f"data.ema.{head}.{rest}" if rest else f"data.{package}.{head}"
    out = str(interpreter.query(ref))
    value = json.loads(out)["expressions"][0] if out != "undefined" else None
    holds = value not in (None, False)
    assert holds != negated, f"{file}: {name}: {ref} gave {out}"


def test_every_policy_package_has_tests_beside_it() -> None:
    for path in POLICY_DIR.glob("*.rego"):
        if not path.name.endswith("_test.rego"):
            assert (path.parent / f"{path.stem}_test.rego").exists(), path.name


def test_engine_withholds_when_policy_cannot_load(tmp_path: Path) -> None:
    (tmp_path / "broken.rego").write_text("package ema.share\n\nallow if {")
    engine = RegopyEngine(tmp_path)
    decision = engine.decide({"request": {}})
    assert decision["allow"] is False
    assert decision["reasons"][0].startswith("policy could not be loaded")


def test_engine_withholds_when_policy_data_cannot_load(tmp_path: Path) -> None:
    for path in POLICY_DIR.glob("*.rego"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "data.json").write_text('{"legal": ')
    decision = RegopyEngine(tmp_path).decide({"request": {}})
    assert decision["allow"] is False
    assert decision["reasons"][0].startswith("policy could not be loaded")


def test_engine_withholds_when_policy_gives_no_decision(tmp_path: Path) -> None:
    (tmp_path / "other.rego").write_text("package ema.other\n\nimport rego.v1\n\nx := 1\n")
    decision = RegopyEngine(tmp_path).decide({"request": {}})
    assert decision["allow"] is False


def test_age_switches_on_the_birthday() -> None:
    from datetime import date

    assert age_on(date(2010, 6, 15), date(2026, 6, 14)) == 15
    assert age_on(date(2010, 6, 15), date(2026, 6, 15)) == 16
