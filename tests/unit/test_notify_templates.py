"""No template can carry a confidential value: each is rendered with every message model of
the contracts, filled with sentinel values, and nothing marked confidential may appear."""

import string
import time
import typing
from datetime import date, datetime

import pytest
from pydantic import BaseModel

from contracts.fields import confidential_fields
from contracts.registry import CONTRACTS
from services.notify.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign_webhook,
    verify_webhook,
)
from services.notify.templates import SUBJECTS, TEMPLATES, render_both, values_of

SENTINEL = "HEMMELIG"
# The samples put marker strings into enum and decimal fields on purpose (so a leak of any
# field is recognisable); pydantic warns when it serialises them.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


def sample(model: type[BaseModel]) -> BaseModel:
    """An instance with every field set; strings carry a sentinel, dates a sentinel year."""
    values = {}
    for name, info in model.model_fields.items():
        values[name] = _value(info.annotation, name)
    return model.model_construct(**values)


def _value(annotation, name: str):  # noqa: ANN001, ANN202
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin is list:
        return [_value(typing.get_args(annotation)[0], name)]
    if annotation is bool:
        return True
    if annotation is int:
        return 7
    if annotation is date:
        return date(1901, 1, 1)
    if annotation is datetime:
        return datetime(1901, 1, 1, 12, 0)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample(annotation)
    return f"{SENTINEL}-{name}"


def confidential_values(data: BaseModel) -> list[str]:
    found = []
    for name in confidential_fields(type(data)):
        found.append(str(getattr(data, name)))
        if isinstance(getattr(data, name), date):
            found.append(getattr(data, name).strftime("%d.%m.%Y"))
    for name in type(data).model_fields:
        if isinstance(getattr(data, name), BaseModel):
            found += confidential_values(getattr(data, name))
    return found


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.type)
@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_no_template_renders_a_confidential_field(contract, key: str) -> None:  # noqa: ANN001
    data = sample(contract.model)
    fields = {
        f
        for language in ("nb", "en")
        for _, f, _, _ in string.Formatter().parse(TEMPLATES[key][language])
        if f
    }
    available = values_of(data)
    if not fields <= set(available):
        # The template does not fit this event, and rendering refuses rather than leak.
        with pytest.raises(KeyError):
            render_both(key, data)
        return
    texts = render_both(key, data)
    for secret in confidential_values(data):
        assert all(secret not in text for text in texts)


def test_templates_name_the_case_and_where_to_act() -> None:
    for key, texts in TEMPLATES.items():
        for language, text in texts.items():
            assert "{case_ref}" in text, (key, language)
            assert "emaflyt" in text, (key, language)
            assert key in SUBJECTS


def test_webhook_signature_verifies_and_refuses_tampering_and_replay() -> None:
    body = b'{"case_ref": "EMA-AAAA"}'
    now = int(time.time())
    headers = {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: sign_webhook("s3cret", str(now), body)}
    assert verify_webhook("s3cret", headers, body)
    assert not verify_webhook("s3cret", headers, body + b" ")
    assert not verify_webhook("other", headers, body)
    assert not verify_webhook("s3cret", headers, body, now=now + 3600)  # a replay, an hour on
    assert not verify_webhook("s3cret", {SIGNATURE_HEADER: headers[SIGNATURE_HEADER]}, body)
