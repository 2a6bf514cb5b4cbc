import pytest

from services.kit.sealing import (
    HYBRID,
    X25519,
    CannotOpen,
    SealingKey,
    delivery_context,
    request_context,
    seal,
)
from services.kit.signing import UnitKey, verify


def test_signature_covers_the_exact_body(tmp_path) -> None:  # noqa: ANN001
    key = UnitKey.generate("centre-a")
    body = b'{"a": 1}'
    headers = key.sign(body)
    assert headers["Ema-Key-Id"] == f"centre-a/{key.kid}"
    assert verify(key.public_b64, body, headers["Ema-Signature"])
    assert not verify(key.public_b64, body + b" ", headers["Ema-Signature"])
    assert not verify(UnitKey.generate("x").public_b64, body, headers["Ema-Signature"])
    assert not verify(key.public_b64, body, "not base64!")

    path = tmp_path / "k.pem"
    key.save(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert UnitKey.load("centre-a", path).kid == key.kid


CONTEXT = {
    "case_id": "case-1",
    "request_id": "r-1",
    "source_unit": "centre-a",
    "recipient_unit": "kommune-0301",
    "data_category": "health",
    "purpose": "settlement",
}


@pytest.mark.parametrize("suite", [X25519, HYBRID])
def test_sealed_payload_opens_only_with_the_right_key_and_context(suite: str) -> None:
    key = SealingKey.generate(suite)
    sealed = seal(b"helseopplysninger", suite, key.public_b64, request_context(**CONTEXT))
    assert b"helse" not in sealed.model_dump_json().encode()
    assert sealed.recipient_kid == key.kid and sealed.suite == suite
    assert key.open(sealed, request_context(**CONTEXT)) == b"helseopplysninger"
    with pytest.raises(CannotOpen):
        SealingKey.generate(suite).open(sealed, request_context(**CONTEXT))
    # Any other case, request, sender, recipient, category or purpose: it does not open.
    for field in CONTEXT:
        other = {**CONTEXT, field: CONTEXT[field] + "x"}
        with pytest.raises(CannotOpen):
            key.open(sealed, request_context(**other))
    with pytest.raises(CannotOpen):  # a delivery's context is not a request's
        key.open(sealed, delivery_context("d-1", **CONTEXT))


def test_sealing_keys_survive_a_round_trip_to_disk(tmp_path) -> None:  # noqa: ANN001
    for suite in (X25519, HYBRID):
        key = SealingKey.generate(suite)
        key.save(tmp_path / suite)
        again = SealingKey.load_or_create(tmp_path / suite, suite)
        assert again.kid == key.kid and oct((tmp_path / suite).stat().st_mode & 0o777) == "0o600"
    hybrid = SealingKey.generate(HYBRID)
    assert len(hybrid.public_raw) == 1184 + 32
