"""Transparency-log formats of the C2SP specifications, so logs, witnesses and recipients
speak what Sigsum and transparency-dev speak:

- signed-note: `<text>\\n\\n— <key name> base64(key id[4] || signature)\\n`, key id =
  SHA-256(name || 0x0A || type || public key)[:4]; type 0x01 for Ed25519 note signatures,
  0x04 for timestamped witness cosignatures. Verifier keys ("vkeys") are
  `<name>+<hex key id>+base64(type || public key)`.
- tlog-checkpoint: the note text `<origin>\\n<tree size>\\n<base64 root hash>\\n`.
- tlog-cosignature: a note signature over `cosignature/v1\\ntime <t>\\n<checkpoint text>`,
  signed bytes prefixed by the timestamp (u64, big-endian).

Pure functions over bytes and keys; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014"
MAX_SIGNATURES = 16


class NoteError(ValueError):
    """A note, key or checkpoint that does not parse or does not verify; says which."""


def key_id(name: str, kind: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"key name {name!r}: must be non-empty, without spaces or '+'")


@dataclass(frozen=True)
class Verifier:
    """A public key that checks note signatures of one type under one name."""

    name: str
    kind: int
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.kind, self.public)

    @property
    def key_id(self) -> str:
        """`<name>+<hex key id>`: what a tree head records as the key that signed it."""
        return f"{self.name}+{self.id.hex()}"

    @property
    def vkey(self) -> str:
        raw = base64.b64encode(bytes([self.kind]) + self.public).decode()
        return f"{self.key_id}+{raw}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        try:
            name, hex_id, raw_b64 = vkey.strip().split("+", 2)
            raw = base64.b64decode(raw_b64, validate=True)
            expected = bytes.fromhex(hex_id)
        except (ValueError, binascii.Error) as exc:
            raise NoteError(f"not a verifier key (name+keyid+base64): {vkey[:60]!r}") from exc
        _check_name(name)
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError(f"verifier key {name}+{hex_id}: not an Ed25519 key of type 1 or 4")
        verifier = cls(name, raw[0], raw[1:])
        if verifier.id != expected:
            raise NoteError(f"verifier key {name}+{hex_id}: the key id does not match the key")
        return verifier

    def check(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private Ed25519 key signing notes (type 0x01) or cosignatures (0x04) as `name`."""

    name: str
    private: Ed25519PrivateKey
    kind: int = ED25519

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def verifier(self) -> Verifier:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return Verifier(self.name, self.kind, raw)

    def sign_note(self, text: str) -> str:
        """The note `text` with this key's signature line."""
        if self.kind != ED25519:
            raise NoteError(f"{self.name}: a cosigning key signs cosignatures, not notes")
        _check_text(text)
        signature = self.private.sign(text.encode())
        return f"{text}\n{signature_line(self.name, self.verifier.id, signature)}"

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """A tlog-cosignature line for a checkpoint this cosigner checked."""
        if self.kind != COSIGNATURE_V1:
            raise NoteError(f"{self.name}: a note key does not cosign")
        stamp = struct.pack(">Q", timestamp)
        signature = self.private.sign(cosigned_message(checkpoint_text, timestamp))
        return signature_line(self.name, self.verifier.id, stamp + signature)


def signature_line(name: str, kid: bytes, signature: bytes) -> str:
    return f"{DASH} {name} {base64.b64encode(kid + signature).decode()}\n"


def add_signature(note: str, line: str) -> str:
    """A signed note with one more signature line (e.g. a witness's cosignature)."""
    return (note if note.endswith("\n") else note + "\n") + line


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def _check_text(text: str) -> None:
    if not text.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("note text must end in a newline and hold no control characters")


@dataclass(frozen=True)
class Signature:
    name: str
    id: bytes
    signature: bytes


def parse_note(note: str) -> tuple[str, list[Signature]]:
    """Split a signed note into its text and its signature lines (not verified). A note whose
    last signature line lost its newline in transport (trimmed JSON strings) is taken."""
    if not note.endswith("\n"):
        note += "\n"
    text, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise NoteError("not a signed note: no blank line before the signature lines")
    text += "\n"
    _check_text(text)
    signatures = []
    for line in block[:-1].split("\n"):
        try:
            dash, name, b64 = line.split(" ")
            raw = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise NoteError(f"not a note signature line: {line[:60]!r}") from exc
        if dash != DASH or len(raw) < 5:
            raise NoteError(f"not a note signature line: {line[:60]!r}")
        signatures.append(Signature(name, raw[:4], raw[4:]))
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError(f"a note with {len(signatures)} signatures: at most {MAX_SIGNATURES}")
    return text, signatures


def verify_note(note: str, verifiers: list[Verifier]) -> tuple[str, list[Verifier]]:
    """The note's text and the known keys whose signatures verify. Signatures from unknown
    keys are ignored; a known key's bad signature, or no known signature, is an error."""
    text, signatures = parse_note(note)
    by_id = {(v.name, v.id): v for v in verifiers if v.kind == ED25519}
    good = []
    for sig in signatures:
        verifier = by_id.get((sig.name, sig.id))
        if verifier is None:
            continue
        if not verifier.check(text.encode(), sig.signature):
            raise NoteError(f"the signature of {verifier.key_id} does not verify")
        good.append(verifier)
    if not good:
        names = ", ".join(f"{s.name}+{s.id.hex()}" for s in signatures) or "none"
        raise NoteError(f"signed by no known key (signed by {names})")
    return text, good


def verify_cosignatures(note: str, cosigners: list[Verifier]) -> dict[str, int]:
    """Cosigner name -> timestamp for every known cosigner whose cosignature verifies."""
    text, signatures = parse_note(note)
    by_id = {(v.name, v.id): v for v in cosigners if v.kind == COSIGNATURE_V1}
    found = {}
    for sig in signatures:
        verifier = by_id.get((sig.name, sig.id))
        if verifier is None or len(sig.signature) != 72:
            continue
        (timestamp,) = struct.unpack(">Q", sig.signature[:8])
        if verifier.check(cosigned_message(text, timestamp), sig.signature[8:]):
            found[verifier.name] = timestamp
    return found


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        try:
            origin, size, root_b64 = lines[0], int(lines[1]), lines[2]
            root = base64.b64decode(root_b64, validate=True)
        except (IndexError, ValueError, binascii.Error) as exc:
            raise NoteError("not a checkpoint: origin, size and root hash lines") from exc
        if not origin or size < 0 or len(root) != 32 or str(size) != lines[1]:
            raise NoteError("not a checkpoint: origin, size and root hash lines")
        return cls(origin, size, root)


def open_checkpoint(note: str, verifiers: list[Verifier]) -> tuple[Checkpoint, Verifier]:
    """A checkpoint whose signature by one of the log's keys verifies, and that key."""
    text, good = verify_note(note, verifiers)
    return Checkpoint.parse(text), good[0]


def load_signer(path: str, name: str, kind: int = ED25519) -> Signer:
    """An Ed25519 private key from a PEM file (PKCS#8, unencrypted) as a note signer."""
    with open(path, "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise NoteError(f"{path} does not hold an Ed25519 private key")
    return Signer(name, key, kind)


def read_vkeys(text: str) -> list[Verifier]:
    """Verifier keys, one per line; blank lines and # comments ignored."""
    return [
        Verifier.from_vkey(line)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
