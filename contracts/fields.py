"""Field markers shared by every message model.

A field marked confidential carries personal or sector content (a name, a birth date, a DUF
number, health, school or barnevern content). It must never appear in a log line or a
notification; tests walk every model for this marker.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

CONFIDENTIAL_KEY = "x-confidential"

UNIT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


def confidential(description: str, **kwargs: Any) -> Any:
    """A pydantic Field marked confidential in the model and its JSON Schema."""
    return Field(description=description, json_schema_extra={CONFIDENTIAL_KEY: True}, **kwargs)


def unit_id(description: str) -> Any:
    return Field(description=description, pattern=UNIT_ID_PATTERN)


def confidential_fields(model: type[BaseModel]) -> set[str]:
    """Names of the fields of `model` marked confidential (one level; nested models walk too)."""
    found: set[str] = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get(CONFIDENTIAL_KEY):
            found.add(name)
    return found
