"""NATS identities from Ed25519 keys: NKey encoding and the JWTs of NATS's decentralized auth.

An NKey is an Ed25519 key in base32 with a one-byte role prefix and a CRC-16; a unit's NATS
user key is the very key it signs messages with, so the directory binds both at once. JWTs
follow nats-io/jwt v2 (header `{"typ":"JWT","alg":"ed25519-nkey"}`, claims with `nats`)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

OPERATOR, ACCOUNT, USER = "O", "A", "U"
_PREFIX = {OPERATOR: 14 << 3, ACCOUNT: 0, USER: 20 << 3}
_SEED = 18 << 3
_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


class BadNKey(ValueError):
    """Not an NKey of the expected role, or its checksum is wrong."""


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _encode(raw: bytes) -> str:
    raw += _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode().rstrip("=")


def _decode(text: str) -> bytes:
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        raise BadNKey("not base32") from None
    body, crc = raw[:-2], raw[-2:]
    if len(raw) < 3 or _crc16(body).to_bytes(2, "little") != crc:
        raise BadNKey("checksum does not match")
    return body


def raw_public(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_nkey(role: str, key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    """`U…` for a user, `A…` for an account, `O…` for an operator."""
    raw = key if isinstance(key, bytes) else raw_public(key)
    return _encode(bytes([_PREFIX[role]]) + raw)


def user_nkey_from_b64(public_b64: str) -> str:
    """A unit's NATS user key from the base64 raw Ed25519 key in the unit directory."""
    return public_nkey(USER, base64.b64decode(public_b64))


def decode_public(nkey: str, role: str) -> Ed25519PublicKey:
    body = _decode(nkey)
    if len(body) != 33 or body[0] != _PREFIX[role]:
        raise BadNKey(f"not a public {role} key")
    return Ed25519PublicKey.from_public_bytes(body[1:])


def seed(role: str, key: Ed25519PrivateKey) -> str:
    """The private key as an NKey seed (`SU…`, `SA…`, `SO…`), as .creds files hold it."""
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    prefix = _PREFIX[role]
    return _encode(bytes([_SEED | (prefix >> 5), (prefix & 31) << 3]) + raw)


def from_seed(text: str) -> tuple[str, Ed25519PrivateKey]:
    body = _decode(text.strip())
    if len(body) != 34 or body[0] & 0xF8 != _SEED:
        raise BadNKey("not an NKey seed")
    prefix = ((body[0] & 7) << 5) | (body[1] >> 3)
    role = next((r for r, p in _PREFIX.items() if p == prefix), None)
    if role is None:
        raise BadNKey("seed of an unknown role")
    return role, Ed25519PrivateKey.from_private_bytes(body[2:])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(
    issuer: Ed25519PrivateKey,
    issuer_role: str,
    subject: str,
    name: str,
    nats: dict[str, Any],
    issued_at: int | None = None,
) -> str:
    """A JWT signed by `issuer`; `jti` is the hash of the claims, as nats-io/jwt makes it."""
    claims: dict[str, Any] = {
        "jti": "",
        "iat": issued_at if issued_at is not None else int(time.time()),
        "iss": public_nkey(issuer_role, issuer),
        "name": name,
        "sub": subject,
        "nats": {**nats, "version": 2},
    }
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    head = _b64url(json.dumps(_HEADER).encode())
    body = _b64url(json.dumps(claims, sort_keys=True).encode())
    signature = issuer.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{_b64url(signature)}"


def decode_jwt(token: str, issuer_role: str | None = None) -> dict[str, Any]:
    """The claims of a JWT whose signature verifies against its `iss`; ValueError if not."""
    try:
        head, body, signature = token.strip().split(".")
        claims = json.loads(_unb64url(body))
        issuer = claims["iss"]
    except (ValueError, KeyError, json.JSONDecodeError):
        raise ValueError("not a JWT") from None
    roles = [issuer_role] if issuer_role else list(_PREFIX)
    for role in roles:
        try:
            public = decode_public(issuer, role)
        except BadNKey:
            continue
        try:
            public.verify(_unb64url(signature), f"{head}.{body}".encode())
        except InvalidSignature:
            raise ValueError("JWT signature does not verify") from None
        return claims
    raise ValueError("JWT issuer is not a key of the expected role")


def sign_nonce(key: Ed25519PrivateKey, nonce: str) -> bytes:
    """What nats-py's signature_cb returns: the base64 signature of the server's nonce."""
    return base64.b64encode(key.sign(nonce.encode()))
