"""contracts/README.md's generated tables (what each purpose may receive, the codes) match the
data they come from, and fail when that data changes without them (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts import generate


def test_the_readme_tables_match_the_policy_and_reference_data() -> None:
    text = generate.README.read_text(encoding="utf-8")
    assert generate.readme_text(text) == text, "run `make schemas` and commit contracts/README.md"


def test_every_purpose_and_category_of_the_policy_data_is_in_the_readme() -> None:
    text = generate.README.read_text(encoding="utf-8")
    legal = json.loads(generate.POLICY_DATA.read_text(encoding="utf-8"))["legal"]
    for purpose, lists in legal["minimise"].items():
        for category, fields in lists.items():
            what = "any category" if category == "*" else f"`{category}`"
            row = f"| `{purpose}` | {what} | " + ", ".join(f"`{f}`" for f in fields) + " |"
            assert row in text, row
    for statute in legal["statutes"]:
        assert f"| `{statute}` |" in text
    measures = json.loads((generate.MUNICIPALITY_DATA / "measures.json").read_text())
    for entry in measures["measures"] + measures["care_needs"]:
        assert f"| `{entry['code']}` |" in text


def test_a_change_in_the_policy_data_makes_the_readme_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(generate.POLICY_DATA.read_text(encoding="utf-8"))
    data["legal"]["minimise"]["treatment"]["health"].append("blood_type")
    changed = tmp_path / "data.json"
    changed.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr(generate, "POLICY_DATA", changed)
    text = generate.README.read_text(encoding="utf-8")
    assert generate.readme_text(text) != text
    assert generate.main(["--check"]) == 1
    measures = json.loads((generate.MUNICIPALITY_DATA / "measures.json").read_text())
    measures["measures"].append({"code": "hybel", "nb": "Hybel", "en": "Bedsit"})
    folder = tmp_path / "municipality"
    folder.mkdir()
    (folder / "measures.json").write_text(json.dumps(measures), encoding="utf-8")
    for name in ("municipalities.json",):
        (folder / name).write_text((generate.MUNICIPALITY_DATA / name).read_text())
    monkeypatch.setattr(
        generate, "POLICY_DATA", generate.ROOT / "services/consent/policies/data.json"
    )
    monkeypatch.setattr(generate, "MUNICIPALITY_DATA", folder)
    assert "`hybel`" in generate.readme_text(text)
    assert generate.readme_text(text) != text


def test_the_delivered_v1_payload_is_described_as_sealed_to_the_recipient() -> None:
    schema = json.loads((generate.SCHEMA_DIR / "no.ema.share.delivered.v1.json").read_text())
    payload = json.dumps(schema["$defs"])
    assert "recipient" in payload
    assert "Content sealed to the consent broker" not in payload


def test_the_examples_the_docs_name_exist_and_start() -> None:
    import re
    import subprocess
    import sys

    root = generate.ROOT
    named = set()
    for doc in (root / "README.md", generate.README):
        named |= set(re.findall(r"examples/([a-z_]+\.py)", doc.read_text(encoding="utf-8")))
        named |= set(re.findall(r"\[`([a-z_]+\.py)`\]\(\.\./examples/", doc.read_text()))
    assert {
        "partner_arrival.py",
        "partner.py",
        "care_centre.py",
        "municipality.py",
        "school.py",
        "health.py",
        "barnevern.py",
        "statsforvalter.py",
        "udi.py",
    } <= named
    for name in sorted(named - {"partner.py"}):
        run = subprocess.run(
            [sys.executable, str(root / "examples" / name), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, f"{name}: {run.stderr}"
        assert "--jwt" in run.stdout
