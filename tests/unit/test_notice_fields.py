"""Notify builds a task notice from a planning item without validating it again
(services/notify/handlers.py task_notice): that holds only while each field of the notice
accepts whatever the same field of the item accepts. Checked here from the models' schemas, so
a change to either model that breaks it fails."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.messages import DeadlineScheduledV2, TaskNoticeV1, TaskStatusV2

NOTICE = TaskNoticeV1.model_json_schema()
# Fields an item may lack, and what task_notice puts in their place.
DEFAULTED = {"status": "scheduled", "days_late": 0, "legal_ref": None}


def accepts(wide: dict[str, Any], narrow: dict[str, Any]) -> bool:
    """Whether every value `narrow` allows is allowed by `wide` (for the schema keywords these
    models use: anyOf, enum, type, format, pattern, minimum, maxLength)."""
    if "anyOf" in narrow:
        return all(accepts(wide, n) for n in narrow["anyOf"])
    if "anyOf" in wide:
        return any(accepts(w, narrow) for w in wide["anyOf"])
    if "enum" in wide or "const" in wide:
        allowed = set(wide.get("enum", [wide.get("const")]))
        given = narrow.get("enum", [narrow["const"]] if "const" in narrow else None)
        return given is not None and set(given) <= allowed
    for key in ("type", "format", "pattern"):
        if key in wide and wide[key] != narrow.get(key):
            return False
    if "minimum" in wide and narrow.get("minimum", float("-inf")) < wide["minimum"]:
        return False
    if "maxLength" in wide and narrow.get("maxLength", float("inf")) > wide["maxLength"]:
        return False
    return True


@pytest.mark.parametrize("item", [DeadlineScheduledV2, TaskStatusV2])
def test_every_notice_field_accepts_what_the_planning_item_carries(item: type) -> None:
    schema = item.model_json_schema()
    for name, wide in NOTICE["properties"].items():
        if name not in schema["properties"]:
            assert name in DEFAULTED, f"{item.__name__} has no {name} and it has no default"
            # The value task_notice puts in its place is valid there.
            TaskNoticeV1.model_validate({**sample(), name: DEFAULTED[name]})
            continue
        narrow = schema["properties"][name]
        assert accepts(wide, narrow), (item.__name__, name, narrow, wide)


def sample() -> dict[str, Any]:
    return {
        "task_id": "t1",
        "case_id": "c1",
        "case_ref": "EMA-1",
        "task": "arrival_talk",
        "title_nb": "x",
        "title_en": "y",
        "due": "2026-04-07",
        "status": "due",
        "days_late": 0,
        "responsible_unit": "centre-a",
        "legal_ref": "ref",
        "pathway": "ema-care-centre@3",
    }


def test_the_check_itself_refuses_a_wider_field() -> None:
    """The checker is not vacuous: a wider enum, another type, a looser minimum, no pattern."""
    status = NOTICE["properties"]["status"]
    assert not accepts(status, {"enum": ["scheduled", "lost"], "type": "string"})
    assert not accepts({"type": "integer", "minimum": 0}, {"type": "integer"})
    assert not accepts({"type": "string", "pattern": "^a$"}, {"type": "string"})
    assert not accepts({"type": "string", "format": "date"}, {"type": "integer"})
    assert accepts(NOTICE["properties"]["legal_ref"], {"type": "string"})
