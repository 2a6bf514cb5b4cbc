"""The decision log: append records to the Merkle tree and sign each tree head; verify it.

A tree head signs `emaflyt-sth-v1\\n<size>\\n<root hex>\\n<signed_at>` with the service key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from services.consent.domain import canonical
from services.consent.store import LogEntry, LogState, TreeHead
from services.kit import merkle
from services.kit.db import make_engine
from services.kit.signing import UnitKey


def sth_message(size: int, root_hex: str, signed_at: str) -> bytes:
    return f"emaflyt-sth-v1\n{size}\n{root_hex}\n{signed_at}".encode()


async def append(
    session: AsyncSession, key: UnitKey, kind: str, ref_id: str, body: dict[str, Any]
) -> tuple[int, str]:
    """Append one record in the caller's transaction; returns (index, "sha256:<leaf hash>")."""
    state = await session.scalar(select(LogState).where(LogState.id == 1).with_for_update())
    if state is None:
        state = LogState(id=1, size=0, frontier=[])
        session.add(state)
    frontier = merkle.Frontier.from_json(state.frontier)
    data = canonical(body)
    leaf = merkle.leaf_hash(data)
    index = state.size
    frontier.append(leaf)
    root_hex = frontier.root().hex()
    signed_at = datetime.now(UTC).isoformat()
    signature = key.private.sign(sth_message(index + 1, root_hex, signed_at))
    session.add(
        LogEntry(idx=index, kind=kind, ref_id=ref_id, body=data.decode(), leaf_hash=leaf.hex())
    )
    session.add(
        TreeHead(
            size=index + 1,
            root=root_hex,
            signed_at=signed_at,
            key_id=key.key_id,
            signature=base64.b64encode(signature).decode(),
        )
    )
    state.size, state.frontier = index + 1, frontier.to_json()
    return index, "sha256:" + leaf.hex()


# -- verification (reads the database directly; used by `emaflyt consent verify`) -----------


def database_of(data_dir: Path) -> Path | str:
    """The consent broker's database for a system's data folder: its SQLite file, or the
    URL from EMA_DATABASE_URL (a template with {service}, or consent's own)."""
    import os

    from services.kit.settings import Settings

    env = {**os.environ, "EMA_DATA_DIR": str(data_dir)}
    url = Settings.from_env("consent", env).database_url or ""
    if make_url(url).get_backend_name() == "sqlite":
        return Path(make_url(url).database or "")
    return url


def read_only(db: Path | str, *queries: tuple[str, dict[str, Any]]) -> list[list[tuple]]:
    """Run read-only queries (`:name` parameters) on a SQLite file or a database URL."""
    if isinstance(db, str) and make_url(db).get_backend_name() == "sqlite":
        db = Path(make_url(db).database or "")
    if isinstance(db, Path):
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return [conn.execute(sql, params).fetchall() for sql, params in queries]

    async def run(url: str) -> list[list[tuple]]:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return [[tuple(row) for row in await conn.execute(text(sql), params)]
                        for sql, params in queries]  # fmt: skip
        finally:
            await engine.dispose()

    return asyncio.run(run(db))


@dataclass
class Report:
    size: int = 0
    signed_size: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


def verify_log(
    db: Path | str, public_key_b64: str, progress: Callable[[int, int], None] | None = None
) -> Report:
    """Recompute every leaf and every root and check them against the signed tree heads.
    Names exactly which record was altered, removed or reordered. `progress(done, total)` is
    called as records are checked."""
    public = _public_key(public_key_b64)
    entries, heads, decisions = read_only(
        db,
        ("select idx, kind, ref_id, body, leaf_hash from consent_log order by idx", {}),
        ("select size, root, signed_at, signature from consent_tree_head order by size", {}),
        ("select id, log_index, outcome, legal_basis, fields, record_hash "
         "from consent_decision", {}),
    )  # fmt: skip
    report = Report(size=len(entries))
    roots: dict[int, str] = {}
    for size, root_hex, signed_at, signature in heads:
        try:
            public.verify(base64.b64decode(signature), sth_message(size, root_hex, signed_at))
            roots[size] = root_hex
        except (InvalidSignature, ValueError):
            report.problems.append(f"tree head at size {size}: signature does not verify")
    report.signed_size = max(roots, default=0)
    by_index = {e[0]: e for e in entries}
    frontier = merkle.Frontier()
    total = max(report.signed_size, len(entries))
    for pos in range(total):
        if progress is not None and (pos % 500 == 0 or pos == total - 1):
            progress(pos + 1, total)
        entry = by_index.get(pos)
        if entry is None:
            report.problems.append(
                f"record at index {pos} was removed (the signed tree head "
                f"at size {report.signed_size} covers it)"
            )
            break
        leaf = merkle.leaf_hash(entry[3].encode())
        expected = roots.get(pos + 1)
        trial = merkle.Frontier(frontier.nodes)
        trial.append(leaf)
        if expected is not None and trial.root().hex() != expected:
            moved = _fits_elsewhere(frontier, expected, entries, pos)
            if moved is not None:
                report.problems.append(
                    f"record {moved[2]} ({moved[1]}) at index {moved[0]} belongs at index "
                    f"{pos}: the log was reordered"
                )
            elif leaf.hex() != entry[4]:
                report.problems.append(
                    f"record {entry[2]} ({entry[1]}) at index {pos} was "
                    "altered: its content no longer matches its hash"
                )
            else:
                report.problems.append(
                    f"record {entry[2]} ({entry[1]}) at index {pos} was "
                    "altered: content and hash rewritten, the signed tree "
                    f"head at size {pos + 1} disagrees"
                )
            break
        if pos >= report.signed_size:
            report.problems.append(
                f"record {entry[2]} at index {pos} is not covered by a signed tree head"
            )
        frontier = trial
    bodies = {e[0]: json.loads(e[3]) for e in entries}
    for dec_id, log_index, outcome, legal_basis, fields, record_hash in decisions:
        body = bodies.get(log_index)
        row = {"outcome": outcome, "legal_basis": legal_basis, "fields": json.loads(fields)}
        if body is None or body.get("id") != dec_id:
            continue  # reported above as a removed or reordered record
        for name, value in row.items():
            if body.get(name) != value:
                report.problems.append(
                    f"decision {dec_id}: table column {name} differs from "
                    f"its log record at index {log_index}"
                )
        if "sha256:" + by_index[log_index][4] != record_hash:
            report.problems.append(f"decision {dec_id}: record_hash differs from its log leaf")
    return report


def _fits_elsewhere(
    frontier: merkle.Frontier, expected: str, entries: list[tuple], pos: int
) -> tuple | None:
    for entry in entries:
        if entry[0] == pos:
            continue
        trial = merkle.Frontier(frontier.nodes)
        trial.append(merkle.leaf_hash(entry[3].encode()))
        if trial.root().hex() == expected:
            return entry
    return None


def prove_record(db: Path | str, public_key_b64: str, ref_id: str) -> dict[str, Any]:
    """Inclusion proof of one record against the latest signed tree head, verified."""
    hashes, rows, heads = read_only(
        db,
        ("select leaf_hash from consent_log order by idx", {}),
        ("select idx, body, leaf_hash from consent_log where ref_id = :ref_id "
         "order by idx desc limit 1", {"ref_id": ref_id}),
        ("select size, root, signed_at, signature from consent_tree_head "
         "order by size desc limit 1", {}),
    )  # fmt: skip
    leaves = [bytes.fromhex(h) for (h,) in hashes]
    row, head = (rows or [None])[0], (heads or [None])[0]
    if row is None:
        return {"record": ref_id, "ok": False, "problem": "no record with this id in the log"}
    if head is None:
        return {"record": ref_id, "ok": False, "problem": "the log has no signed tree head"}
    size, root_hex, signed_at, signature = head
    try:
        _public_key(public_key_b64).verify(
            base64.b64decode(signature), sth_message(size, root_hex, signed_at)
        )
    except InvalidSignature:
        return {"record": ref_id, "ok": False, "problem": "latest tree head signature is bad"}
    index, body, _ = row
    leaf = merkle.leaf_hash(body.encode())
    proof = merkle.inclusion_proof(index, leaves[:size]) if index < size <= len(leaves) else []
    ok = index < size and merkle.verify_inclusion(index, size, leaf, proof, bytes.fromhex(root_hex))
    out = {
        "record": ref_id,
        "index": index,
        "tree_size": size,
        "root": root_hex,
        "ok": ok,
        "leaf_hash": leaf.hex(),
        "proof": [p.hex() for p in proof],
    }
    if not ok:
        out["problem"] = (
            f"record {ref_id} at index {index} does not verify against the signed "
            f"tree head at size {size}: altered or moved"
        )
    return out
