"""Every `test_` rule in the `_test.rego` files passes in the embedded engine (regopy)."""

import re

import pytest
from regopy import Interpreter

from services.consent.domain import age_on
from services.consent.engine import POLICY_DIR, RegopyEngine

TEST_FILES = sorted(POLICY_DIR.glob("*_test.rego"))


def rego_tests() -> list[tuple[str, str]]:
    found = []
    for path in TEST_FILES:
        text = path.read_text()
        package = re.search(r"^package ([\w.]+)", text, re.M).group(1)
        for name in re.findall(r"^(test_\w+) if", text, re.M):
            found.append((package, name))
    return found


@pytest.mark.parametrize(("package", "rule"), rego_tests())
def test_rego_policy_test_passes(package: str, rule: str) -> None:
    interp = Interpreter()
    for path in sorted(POLICY_DIR.glob("*.rego")):
        interp.add_module(path.name, path.read_text())
    out = interp.query(f"data.{package}.{rule}")
    assert str(out) == '{"expressions":[true]}', f"{package}.{rule}: {out}"


def test_engine_withholds_when_policy_cannot_load(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "broken.rego").write_text("package ema.share\n\nallow if {")
    engine = RegopyEngine(tmp_path)
    decision = engine.decide({"request": {}})
    assert decision["allow"] is False
    assert decision["reasons"][0].startswith("policy could not be loaded")


def test_engine_withholds_when_policy_gives_no_decision(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "other.rego").write_text("package ema.other\n\nimport rego.v1\n\nx := 1\n")
    decision = RegopyEngine(tmp_path).decide({"request": {}})
    assert decision["allow"] is False


def test_age_switches_on_the_birthday() -> None:
    from datetime import date

    assert age_on(date(2010, 6, 15), date(2026, 6, 14)) == 15
    assert age_on(date(2010, 6, 15), date(2026, 6, 15)) == 16
