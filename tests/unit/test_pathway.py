import json

import pytest

from services.planning.pathway import PATHWAY_DIR, PathwayError, load_pathway


def test_shipped_pathways_load() -> None:
    for path in PATHWAY_DIR.glob("*.json"):
        pathway = load_pathway(path)
        assert pathway.steps


def test_bad_pathway_file_names_the_problem(tmp_path) -> None:  # noqa: ANN001
    good = json.loads((PATHWAY_DIR / "ema-care-centre.json").read_text())
    good["steps"][0]["offset"] = {"unit": "fortnights", "value": 1}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(good))
    with pytest.raises(PathwayError, match=r"bad.json: invalid pathway: steps.0.offset.unit"):
        load_pathway(bad)
    bad.write_text("{not json")
    with pytest.raises(PathwayError, match="cannot read pathway file"):
        load_pathway(bad)


def _write(tmp_path, pathway: dict):  # noqa: ANN001, ANN202
    path = tmp_path / "p.json"
    path.write_text(json.dumps(pathway))
    return path


def test_undeclared_milestone_and_backward_recurrence_are_refused(tmp_path) -> None:  # noqa: ANN001
    base = json.loads((PATHWAY_DIR / "ema-care-centre.json").read_text())
    base["steps"][0]["completed_by"] = "tea_served"
    with pytest.raises(PathwayError, match="milestone 'tea_served' is not declared"):
        load_pathway(_write(tmp_path, base))
    base = json.loads((PATHWAY_DIR / "ema-care-centre.json").read_text())
    base["steps"][0]["recurrence"] = {"every": {"unit": "months", "value": -3}, "until": "settled"}
    with pytest.raises(PathwayError, match="must move forward"):
        load_pathway(_write(tmp_path, base))
    base = json.loads((PATHWAY_DIR / "ema-care-centre.json").read_text())
    base["steps"].append(base["steps"][0])
    with pytest.raises(PathwayError, match="tasks appear twice: arrival_talk"):
        load_pathway(_write(tmp_path, base))


def test_every_step_names_its_source_and_strength() -> None:
    from services.planning.pathway import load_all

    for pathway in load_all().values():
        for step in pathway.steps:
            assert (
                step.source
                and step.legal_ref
                and step.strength in ("skal", "bør", "anbefales", "kan")
            )
