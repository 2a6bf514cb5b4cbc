"""Seal content to a unit's X25519 key (ephemeral ECDH, HKDF-SHA256, AES-256-GCM)."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from contracts.messages import EncryptedPayload

_INFO = b"emaflyt sealed payload v1"


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sealing_kid(public: X25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=_INFO).derive(shared)


def seal(plaintext: bytes, recipient_b64: str, aad: bytes = b"") -> EncryptedPayload:
    recipient = X25519PublicKey.from_public_bytes(base64.b64decode(recipient_b64))
    ephemeral = X25519PrivateKey.generate()
    eph_raw = _raw(ephemeral.public_key())
    key = _key(ephemeral.exchange(recipient), eph_raw, _raw(recipient))
    nonce = os.urandom(12)
    return EncryptedPayload(
        recipient_kid=sealing_kid(recipient),
        ephemeral_public_key=base64.b64encode(eph_raw).decode(),
        nonce=base64.b64encode(nonce).decode(),
        ciphertext=base64.b64encode(AESGCM(key).encrypt(nonce, plaintext, aad)).decode(),
    )


def open_sealed(payload: EncryptedPayload, private: X25519PrivateKey, aad: bytes = b"") -> bytes:
    eph_raw = base64.b64decode(payload.ephemeral_public_key)
    shared = private.exchange(X25519PublicKey.from_public_bytes(eph_raw))
    key = _key(shared, eph_raw, _raw(private.public_key()))
    return AESGCM(key).decrypt(
        base64.b64decode(payload.nonce), base64.b64decode(payload.ciphertext), aad
    )
