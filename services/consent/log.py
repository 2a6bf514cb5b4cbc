"""The decision log: append records to the Merkle tree and sign each tree head as a C2SP
checkpoint with the log's own key; every head goes to the outbox for the witnesses.

The log key is not the service's bus key: it lives where EMA_LOG_KEY_FILE says (outside the
data folder in production, readable only by the service) and is known to verifiers by its
public key and key id (`<origin>+<hex id>`) in the log's key list, across rotations
(docs/decisions/0013). Verification is in `verification.py` and reads no private key.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.messages import LogCheckpointV1
from services.consent.domain import canonical
from services.consent.store import LogEntry, LogState, TreeHead
from services.kit import merkle, tlog
from services.kit.outbox import Outbox

DEFAULT_ORIGIN = "emaflyt.local/consent-log"
log = logging.getLogger("consent.log")


def key_paths(data_dir: Path, key_file: Path | None, keys_file: Path | None) -> tuple[Path, Path]:
    """The log's private key file and its list of public keys (vkeys), defaults in the data
    folder's keys/ (production puts the private key elsewhere)."""
    keys = data_dir / "keys"
    return key_file or keys / "consent-log.pem", keys_file or keys / "consent-log.vkeys"


def load_or_create_signer(origin: str, key_file: Path, keys_file: Path) -> tlog.Signer:
    """The log's signer; a new key is made on first start (mode 600). Its public key joins the
    key list, which keeps every earlier key, so heads signed before a rotation still verify."""
    if key_file.exists():
        if key_file.stat().st_mode & 0o077:
            log.warning(
                "the decision log's key file is readable by others than its owner: chmod 600 it",
                extra={"path": str(key_file)},
            )
        signer = tlog.load_signer(str(key_file), origin)
    else:
        private = Ed25519PrivateKey.generate()
        key_file.parent.mkdir(parents=True, exist_ok=True)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        signer = tlog.Signer(origin, private)
    known = keys_file.read_text(encoding="utf-8") if keys_file.exists() else ""
    if signer.verifier.vkey not in known.split():
        keys_file.parent.mkdir(parents=True, exist_ok=True)
        header = "" if known else "# The decision log's public keys, oldest first (vkeys).\n"
        with keys_file.open("a", encoding="utf-8") as fh:
            fh.write(header + signer.verifier.vkey + "\n")
    return signer


@dataclass(frozen=True)
class Appended:
    """Where a record went: its index and leaf, the checkpoint of the tree it completed, and
    its inclusion proof against that checkpoint (what the recipient of a delivery keeps)."""

    index: int
    leaf: bytes
    checkpoint: str
    inclusion_proof: list[bytes]

    @property
    def record_hash(self) -> str:
        return "sha256:" + self.leaf.hex()

    @property
    def proof_b64(self) -> list[str]:
        return [base64.b64encode(h).decode() for h in self.inclusion_proof]


class DecisionLog:
    """The writer: one per service process, its signer set when the service starts."""

    def __init__(self) -> None:
        self.signer: tlog.Signer | None = None

    def start(self, origin: str, key_file: Path, keys_file: Path) -> None:
        self.signer = load_or_create_signer(origin, key_file, keys_file)

    async def append(
        self, session: AsyncSession, outbox: Outbox, kind: str, ref_id: str, body: dict[str, Any]
    ) -> Appended:
        """Append one record in the caller's transaction, sign the new tree head and queue it
        (with the consistency proof from the previous head) for the witnesses."""
        if self.signer is None:
            raise RuntimeError("the decision log's key is not loaded yet")
        state = await session.scalar(select(LogState).where(LogState.id == 1).with_for_update())
        if state is None:
            state = LogState(id=1, size=0, frontier=[])
            session.add(state)
        frontier = merkle.Frontier.from_json(state.frontier)
        data = canonical(body)
        leaf = merkle.leaf_hash(data)
        index = state.size
        inclusion = merkle.last_leaf_inclusion(frontier)
        consistency = merkle.consistency_from_frontier(frontier, [leaf]) if index else []
        frontier.append(leaf)
        root = frontier.root()
        checkpoint = tlog.Checkpoint(self.signer.name, index + 1, root)
        note = self.signer.sign_note(checkpoint.text)
        _, signatures = tlog.parse_note(note)
        signature = signatures[0]
        session.add(
            LogEntry(idx=index, kind=kind, ref_id=ref_id, body=data.decode(), leaf_hash=leaf.hex())
        )
        session.add(
            TreeHead(
                size=index + 1,
                root=root.hex(),
                signed_at=datetime.now(UTC).isoformat(),
                key_id=self.signer.verifier.key_id,
                signature=base64.b64encode(signature.id + signature.signature).decode(),
            )
        )
        state.size, state.frontier = index + 1, frontier.to_json()
        outbox.add(
            session,
            "no.ema.log.checkpoint.v1",
            LogCheckpointV1(
                origin=self.signer.name,
                size=index + 1,
                checkpoint=note,
                old_size=index,
                consistency_proof=[base64.b64encode(h).decode() for h in consistency],
            ),
        )
        return Appended(index, leaf, note, inclusion)


def head_note(size: int, root_hex: str, key_id: str, signature_b64: str) -> str:
    """A stored tree head as the checkpoint note it was signed as (the key name is the
    origin)."""
    name = key_id.rsplit("+", 1)[0]
    text = tlog.Checkpoint(name, size, bytes.fromhex(root_hex)).text
    raw = base64.b64decode(signature_b64)
    return f"{text}\n{tlog.signature_line(name, raw[:4], raw[4:])}"
