"""Seal content to one unit's key with HPKE (RFC 9180, base mode), its context bound as
`info`: a payload opened under any other case, request, sender, recipient, category or purpose
fails. Two suites: DHKEM(X25519) and the post-quantum hybrid ML-KEM-768 + X25519, each with
HKDF-SHA256 and AES-256-GCM."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from contracts.messages import SealedPayload
from services.kit.private import private_dir

X25519 = "HPKE-X25519-SHA256-A256GCM"
HYBRID = "HPKE-MLKEM768X25519-SHA256-A256GCM"
# The setting's words for the suites (EMA_SEALING_SUITE).
SUITE_SETTINGS = {"x25519": X25519, "mlkem768-x25519": HYBRID}
_SUITES = {
    X25519: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    HYBRID: hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
}
_MLKEM_PUBLIC = 1184


class CannotOpen(ValueError):
    """The payload is not sealed to one of our keys, or not for this context."""


def context(kind: str, **fields: str) -> bytes:
    """The HPKE `info` for a sealed payload: a label, then the context as canonical JSON."""
    return (
        f"emaflyt/{kind}\n".encode()
        + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


def _share(
    case_id: str,
    request_id: str,
    source_unit: str,
    recipient_unit: str,
    data_category: str,
    purpose: str,
) -> dict[str, str]:
    return {
        "case_id": case_id,
        "request_id": request_id,
        "source_unit": source_unit,
        "recipient_unit": recipient_unit,
        "data_category": data_category,
        "purpose": purpose,
    }


def request_context(*args: str, **kw: str) -> bytes:
    """What a share request's payload is sealed to the broker under: its case, request id,
    source, recipient, category and purpose (in that order, or by name)."""
    return context("share-request/v2", **_share(*args, **kw))


def delivery_context(decision_id: str, *args: str, **kw: str) -> bytes:
    """What a delivery is sealed to its recipient under: the decision and the request's
    context (case, request id, source, recipient, category, purpose)."""
    return context("share-delivered/v2", decision_id=decision_id, **_share(*args, **kw))


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _public(suite: str, raw: bytes) -> Any:
    if suite == X25519:
        return X25519PublicKey.from_public_bytes(raw)
    if suite == HYBRID and len(raw) == _MLKEM_PUBLIC + 32:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM_PUBLIC]),
            X25519PublicKey.from_public_bytes(raw[_MLKEM_PUBLIC:]),
        )
    raise ValueError(f"not a public key of suite {suite}")


@dataclass(frozen=True)
class SealingKey:
    """A private sealing key of one suite. Hybrid keys are ML-KEM-768 (its 64-byte seed)
    plus X25519; the public key is ML-KEM's 1184 bytes followed by X25519's 32."""

    suite: str
    x25519: X25519PrivateKey
    mlkem: mlkem.MLKEM768PrivateKey | None = None

    @classmethod
    def generate(cls, suite: str = X25519) -> SealingKey:
        pq = mlkem.MLKEM768PrivateKey.generate() if suite == HYBRID else None
        return cls(suite, X25519PrivateKey.generate(), pq)

    @property
    def public_raw(self) -> bytes:
        x = self.x25519.public_key().public_bytes_raw()
        return (self.mlkem.public_key().public_bytes_raw() + x) if self.mlkem else x

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    @property
    def kid(self) -> str:
        return key_id(self.public_raw)

    def _private(self) -> Any:
        if self.mlkem is None:
            return self.x25519
        return hpke.MLKEM768X25519PrivateKey(self.mlkem, self.x25519)

    def open(self, payload: SealedPayload, info: bytes) -> bytes:
        if payload.suite != self.suite or payload.recipient_kid != self.kid:
            raise CannotOpen("not sealed to this key")
        try:
            sealed = base64.b64decode(payload.sealed, validate=True)
            return _SUITES[self.suite].decrypt(sealed, self._private(), info=info)
        except Exception:
            raise CannotOpen("the payload does not open under this context") from None

    def to_json(self) -> str:
        parts = {
            "suite": self.suite,
            "x25519": base64.b64encode(self.x25519.private_bytes_raw()).decode(),
        }
        if self.mlkem is not None:
            parts["mlkem768_seed"] = base64.b64encode(self.mlkem.private_bytes_raw()).decode()
        return json.dumps(parts)

    @classmethod
    def from_json(cls, text: str) -> SealingKey:
        parts = json.loads(text)
        pq = parts.get("mlkem768_seed")
        return cls(
            parts["suite"],
            X25519PrivateKey.from_private_bytes(base64.b64decode(parts["x25519"])),
            mlkem.MLKEM768PrivateKey.from_seed_bytes(base64.b64decode(pq)) if pq else None,
        )

    def save(self, path: Path) -> None:
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.to_json())

    @classmethod
    def load_or_create(cls, path: Path, suite: str) -> SealingKey:
        if path.exists():
            return cls.from_json(path.read_text())
        key = cls.generate(suite)
        key.save(path)
        return key


def seal(plaintext: bytes, suite: str, recipient_public_b64: str, info: bytes) -> SealedPayload:
    raw = base64.b64decode(recipient_public_b64)
    sealed = _SUITES[suite].encrypt(plaintext, _public(suite, raw), info=info)
    return SealedPayload(
        suite=suite,
        recipient_kid=key_id(raw),  # type: ignore[arg-type]
        sealed=base64.b64encode(sealed).decode(),
    )


def open_with(keys: list[SealingKey], payload: SealedPayload, info: bytes) -> bytes:
    """Open with whichever of our keys it names; CannotOpen if none, or the context differs."""
    for key in keys:
        if key.suite == payload.suite and key.kid == payload.recipient_kid:
            return key.open(payload, info)
    raise CannotOpen("sealed to a key that is not ours")


def x25519_legacy_private(path: Path) -> X25519PrivateKey | None:
    """The broker's X25519 key as earlier versions stored it (PKCS#8 PEM), if present."""
    if not path.exists():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return key if isinstance(key, X25519PrivateKey) else None
