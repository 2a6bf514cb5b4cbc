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
