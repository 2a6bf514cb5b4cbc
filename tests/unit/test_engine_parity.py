"""regopy and OPA (its own Go evaluator, opa-golib-python-bindings) on the same policies: every
`_test.rego` rule passes in OPA as `opa test` would run it, and both engines give the same
decision for every policy input the tests use and for a grid of variations around them.
Where they may differ is recorded in KNOWN_DIFFERENCES (docs/decisions/0012), never skipped."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from opa_bindings import OpaEngine

from services.consent.engine import POLICY_DIR, GoOpaEngine, RegopyEngine
from tests.unit.test_policies import TEST_FILES, rego_tests

# (data_category, purpose, source kind, recipient kind, break_the_glass) -> why they differ.
KNOWN_DIFFERENCES: dict[tuple[str, str, str, str, bool], str] = {}

UNIT_KINDS = ("care_centre", "health", "school", "municipality", "barnevern", "representative")
CATEGORIES = ("health", "school", "barnevern", "identity", "settlement", "kopp")
PURPOSES = (
    "settlement",
    "schooling",
    "treatment",
    "concern_report",
    "emergency",
    "anonymous_consultation",
    "handover",
)


@pytest.fixture(scope="module")
def opa() -> OpaEngine:
    engine = OpaEngine()
    engine.add_data(json.loads((POLICY_DIR / "data.json").read_text()))
    for path in sorted(POLICY_DIR.glob("*.rego")):  # the tests too: OPA runs `with` as is
        engine.add_policy(path.name, path.read_text())
    yield engine
    engine.close()


@pytest.mark.parametrize(
    ("file", "name", "package"),
    [(t[0], t[1], t[5]) for t in rego_tests()],
    ids=[f"{t[0]}::{t[1]}" for t in rego_tests()],
)
def test_rego_policy_test_passes_in_opa(opa: OpaEngine, file: str, name: str, package: str) -> None:
    assert opa.eval_document(f"{package}.{name}") is True, f"{file}: {name}"


def normalised(decision: dict[str, Any]) -> dict[str, Any]:
    """Sets come back as lists in either engine's order: compare them sorted."""
    out = dict(decision)
    for key in ("reasons", "fields"):
        out[key] = sorted(out.get(key) or [])
    out["obligations"] = sorted(json.dumps(o, sort_keys=True) for o in out.get("obligations") or [])
    return out


def policy_inputs() -> list[dict[str, Any]]:
    found = []
    for path in TEST_FILES:
        for literal in re.findall(r"with input as (\{.*\})$", path.read_text(), re.M):
            found.append(json.loads(literal))
    return found


def variations() -> list[dict[str, Any]]:
    """Every category x purpose x unit kinds x break-the-glass around the first test input
    with a consent, at a 12- and a 17-year-old's age; and past the policy data's validity."""
    base = next(i for i in policy_inputs() if i["consents"])
    out = []
    for category, purpose, source, recipient, glass in itertools.product(
        CATEGORIES, PURPOSES, UNIT_KINDS, UNIT_KINDS, (False, True)
    ):
        given = json.loads(json.dumps(base))
        given["request"].update(data_category=category, purpose=purpose, break_the_glass=glass)
        given["units"]["source"]["kind"], given["units"]["recipient"]["kind"] = source, recipient
        given["child"]["age"] = 17 if glass else 12
        out.append(given)
    stale = json.loads(json.dumps(base))
    stale["now_ns"] = 4_000_000_000_000_000_000  # 2096: the policy data has expired
    return out + [stale]


def test_both_engines_decide_alike_on_every_test_input_and_the_variations() -> None:
    regopy, opa = RegopyEngine(), GoOpaEngine()
    assert regopy.error is None and opa.error is None
    inputs = policy_inputs() + variations()
    differ = []
    for given in inputs:
        a, b = normalised(regopy.decide(given)), normalised(opa.decide(given))
        if a != b:
            r, u = given["request"], given["units"]
            key = (
                r["data_category"],
                r["purpose"],
                u["source"]["kind"],
                u["recipient"]["kind"],
                r["break_the_glass"],
            )
            if key not in KNOWN_DIFFERENCES:
                differ.append({"input": given, "regopy": a, "opa": b})
    opa.close()
    assert len(inputs) > 3000
    assert differ == [], json.dumps(differ[:3], indent=1)
