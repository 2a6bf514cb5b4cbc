"""The decision log: append records to the Merkle tree and sign one tree head per transaction
(one per fetched batch of messages) as a C2SP checkpoint with the log's own key; every head goes
to the outbox for the witnesses, and what a record's release carries (the head, its inclusion
proof) is built once the head is signed, in the same transaction (docs/decisions/0019).

The log key is not the service's bus key: it lives where EMA_LOG_KEY_FILE says (outside the
data folder in production, readable only by the service) and is known to verifiers by its
public key and key id (`<origin>+<hex id>`) in the log's key list, across rotations
(docs/decisions/0013). Verification is in `verification.py` and reads no private key.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from contracts.messages import LogCheckpointV1
from services.consent.domain import canonical
from services.consent.store import LogEntry, LogState, TreeHead
from services.kit import merkle, tlog
from services.kit.db import before_commit, per_transaction, queue_rows
from services.kit.outbox import Outbox, current_correlation

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
class Logged:
    """Where a record went: its index and leaf (known at once, in the transaction)."""

    index: int
    leaf: bytes

    @property
    def record_hash(self) -> str:
        return "sha256:" + self.leaf.hex()


@dataclass(frozen=True)
class Appended(Logged):
    """A record with the checkpoint its transaction signed (covering it and the records before
    it in the batch) and its inclusion proof against that checkpoint (what the recipient of a
    delivery keeps)."""

    checkpoint: str
    inclusion_proof: list[bytes]

    @property
    def proof_b64(self) -> list[str]:
        return [base64.b64encode(h).decode() for h in self.inclusion_proof]


Then = Callable[[Appended], None]


@dataclass
class _Pending:
    """The transaction's appends, signed under one head when it commits."""

    outbox: Outbox
    start: merkle.Frontier  # the tree's right edge before the transaction's first append
    frontier: merkle.Frontier  # and after its latest
    existed: bool  # the state row was there (update) or not (insert)
    leaves: list[bytes] = field(default_factory=list)
    then: list[tuple[int, Then, str | None]] = field(default_factory=list)


PENDING = "consent_log_pending"


class DecisionLog:
    """The writer: one per service process, its signer set when the service starts."""

    def __init__(self) -> None:
        self.signer: tlog.Signer | None = None

    def start(self, origin: str, key_file: Path, keys_file: Path) -> None:
        self.signer = load_or_create_signer(origin, key_file, keys_file)

    async def append(
        self,
        session: AsyncSession,
        outbox: Outbox,
        kind: str,
        ref_id: str,
        body: dict[str, Any],
        then: Then | None = None,
    ) -> Logged:
        """Append one record in the caller's transaction. When the transaction commits, the
        tree head over every record it appended is signed once and queued (with the
        consistency proof from the previous head) for the witnesses, then `then` is called
        with the record's checkpoint and inclusion proof, still inside the transaction: what
        it emits is committed with the record, so nothing is released before it is logged."""
        if self.signer is None:
            raise RuntimeError("the decision log's key is not loaded yet")
        pending: list[_Pending] = per_transaction(session, PENDING, list)
        if not pending:
            # The state row's lock (FOR UPDATE on PostgreSQL; SQLite's write lock) is held
            # from here to the commit: appends of other transactions wait for this one's head.
            row = (
                await session.execute(
                    select(LogState.size, LogState.frontier)
                    .where(LogState.id == 1)
                    .with_for_update()
                )
            ).first()
            start = merkle.Frontier.from_json(row.frontier) if row else merkle.Frontier()
            pending.append(
                _Pending(outbox, start, merkle.Frontier(list(start.nodes)), row is not None)
            )
            before_commit(session, self._sign_head)
        batch = pending[0]
        data = canonical(body)
        leaf = merkle.leaf_hash(data)
        index = batch.frontier.size
        batch.frontier.append(leaf)
        batch.leaves.append(leaf)
        queue_rows(
            session,
            LogEntry,
            {
                "idx": index,
                "kind": kind,
                "ref_id": ref_id,
                "body": data.decode(),
                "leaf_hash": leaf.hex(),
            },
        )
        if then is not None:
            batch.then.append((index, then, current_correlation.get()))
        return Logged(index, leaf)

    def _sign_head(self, session: Session) -> None:
        """At commit: one signed head for the transaction's records, its checkpoint to the
        witnesses, then each record's release with the head and its inclusion proof."""
        assert self.signer is not None
        pending: list[_Pending] = per_transaction(session, PENDING, list)
        if not pending:
            return
        batch = pending.pop()
        size, root = batch.frontier.size, batch.frontier.root()
        note = self.signer.sign_note(tlog.Checkpoint(self.signer.name, size, root).text)
        _, signatures = tlog.parse_note(note)
        signature = signatures[0]
        session.execute(
            insert(TreeHead).values(
                size=size,
                root=root.hex(),
                signed_at=datetime.now(UTC).isoformat(),
                key_id=self.signer.verifier.key_id,
                signature=base64.b64encode(signature.id + signature.signature).decode(),
            )
        )
        state = {"size": size, "frontier": batch.frontier.to_json()}
        if batch.existed:
            session.execute(update(LogState).where(LogState.id == 1).values(**state))
        else:
            session.execute(insert(LogState).values(id=1, **state))
        old_size = batch.start.size
        consistency = (
            merkle.consistency_from_frontier(batch.start, batch.leaves) if old_size else []
        )
        batch.outbox.add(
            session,
            "no.ema.log.checkpoint.v1",
            LogCheckpointV1(
                origin=self.signer.name,
                size=size,
                checkpoint=note,
                old_size=old_size,
                consistency_proof=[base64.b64encode(h).decode() for h in consistency],
            ),
        )
        if not batch.then:
            return
        proofs = merkle.inclusions_from_frontier(batch.start, batch.leaves)
        for index, then, correlation in batch.then:
            token = current_correlation.set(correlation)
            try:
                then(
                    Appended(index, batch.leaves[index - old_size], note, proofs[index - old_size])
                )
            finally:
                current_correlation.reset(token)


def head_note(size: int, root_hex: str, key_id: str, signature_b64: str) -> str:
    """A stored tree head as the checkpoint note it was signed as (the key name is the
    origin)."""
    name = key_id.rsplit("+", 1)[0]
    text = tlog.Checkpoint(name, size, bytes.fromhex(root_hex)).text
    raw = base64.b64decode(signature_b64)
    return f"{text}\n{tlog.signature_line(name, raw[:4], raw[4:])}"
