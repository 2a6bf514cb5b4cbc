import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.kit.sealing import open_sealed, seal
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


def test_sealed_payload_opens_only_with_the_right_key() -> None:
    import base64

    from cryptography.hazmat.primitives import serialization

    private = X25519PrivateKey.generate()
    public = base64.b64encode(private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()  # fmt: skip
    sealed = seal(b"helseopplysninger", public, aad=b"case-1")
    assert b"helse" not in sealed.model_dump_json().encode()
    assert open_sealed(sealed, private, aad=b"case-1") == b"helseopplysninger"
    with pytest.raises(InvalidTag):
        open_sealed(sealed, X25519PrivateKey.generate(), aad=b"case-1")
    with pytest.raises(InvalidTag):
        open_sealed(sealed, private, aad=b"case-2")
