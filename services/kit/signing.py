"""Ed25519 message signing: the signature covers the exact body bytes.

Headers: `Ema-Key-Id: <unit-id>/<kid>` and `Ema-Signature: <base64 signature>`.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contracts.envelope import HEADER_KEY_ID, HEADER_SIGNATURE
from services.kit.private import private_dir


def kid_for(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class UnitKey:
    """A unit's private signing key."""

    unit_id: str
    private: Ed25519PrivateKey

    # Computed once per key (cached_property writes past the frozen dataclass's __setattr__):
    # every outgoing message names the key id.
    @cached_property
    def public_b64(self) -> str:
        return base64.b64encode(public_raw(self.private.public_key())).decode()

    @cached_property
    def kid(self) -> str:
        return kid_for(public_raw(self.private.public_key()))

    @property
    def key_id(self) -> str:
        return f"{self.unit_id}/{self.kid}"

    def sign(self, body: bytes) -> dict[str, str]:
        return {
            HEADER_KEY_ID: self.key_id,
            HEADER_SIGNATURE: base64.b64encode(self.private.sign(body)).decode(),
        }

    def save(self, path: Path) -> None:
        private_dir(path.parent)
        pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)

    @classmethod
    def generate(cls, unit_id: str) -> UnitKey:
        return cls(unit_id, Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, unit_id: str, path: Path) -> UnitKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(unit_id, key)

    @classmethod
    def load_or_create(cls, unit_id: str, path: Path) -> UnitKey:
        if path.exists():
            return cls.load(unit_id, path)
        key = cls.generate(unit_id)
        key.save(path)
        return key


def verify(public_b64: str, body: bytes, signature_b64: str) -> bool:
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
        public.verify(base64.b64decode(signature_b64, validate=True), body)
    except (InvalidSignature, ValueError):
        return False
    return True
