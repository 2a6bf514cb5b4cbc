"""Verifying the decision log from its database alone, with public keys only: every leaf
against the signed tree heads (keys looked up by key id, across rotations), and every table
that is an index of the log (decisions, consents, reviews, break-the-glass justifications)
against the records it is derived from: every record has its row, every row its record, and
every column what its record says. Each problem names the first record that differs, is
missing or is extra. `witnesses.py` adds what the witnesses outside the database hold.

Used by `emaflyt consent verify`, `emaflyt audit verify`, and the audit pages.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.consent.domain import sha256_json
from services.consent.log import head_note
from services.kit import merkle, tlog
from services.kit.db import make_engine

# consent_decision columns, in the order the queries below select them.
DECISION_COLUMNS = (
    "id",
    "request_id",
    "case_id",
    "source_unit",
    "recipient_unit",
    "data_category",
    "purpose",
    "outcome",
    "legal_basis",
    "fields",
    "obligations",
    "reasons",
    "reason_nb",
    "policy_input",
    "policy_revision",
    "data_version",
    "log_index",
    "record_hash",
    "decided_at",
)
# Columns copied verbatim from the logged record.
COPIED = (
    "request_id",
    "case_id",
    "source_unit",
    "recipient_unit",
    "data_category",
    "purpose",
    "outcome",
    "legal_basis",
    "fields",
    "obligations",
    "reasons",
    "reason_nb",
    "policy_revision",
    "data_version",
)
JSON_COLUMNS = {"fields", "obligations", "reasons", "policy_input", "policy"}


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
                return [
                    [tuple(row) for row in await conn.execute(text(sql), params)]
                    for sql, params in queries
                ]
        finally:
            await engine.dispose()

    return asyncio.run(run(db))


def keys_file_of(data_dir: Path, given: str | None = None) -> Path:
    """The log's public keys: as given, else EMA_LOG_KEYS_FILE, else the data folder's."""
    import os

    chosen = given or os.environ.get("EMA_LOG_KEYS_FILE")
    return Path(chosen) if chosen else data_dir / "keys" / "consent-log.vkeys"


def has_table(db: Path | str, name: str) -> bool:
    if isinstance(db, Path) or make_url(db).get_backend_name() == "sqlite":
        (rows,) = read_only(db, ("select name from sqlite_master where name = :n", {"n": name}))
    else:
        (rows,) = read_only(
            db, ("select tablename from pg_tables where tablename = :n", {"n": name})
        )
    return bool(rows)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def row_dict(columns: tuple[str, ...], row: tuple) -> dict[str, Any]:
    out = dict(zip(columns, row, strict=True))
    for name in JSON_COLUMNS & set(out):
        out[name] = _json(out[name])
    return out


def decision_differences(row: dict[str, Any], body: dict[str, Any], leaf: bytes) -> list[str]:
    """The decision table's columns that differ from the logged record (by name)."""
    differ = [name for name in COPIED if row.get(name) != body.get(name)]
    if row.get("record_hash") != "sha256:" + leaf.hex():
        differ.append("record_hash")
    if _time(row.get("decided_at")) != _time(body.get("decided_at")):
        differ.append("decided_at")
    if row.get("policy_input") and sha256_json(row["policy_input"]) != body.get(
        "policy_input_hash"
    ):  # an input erased with its case is empty; one that is there must be the logged one
        differ.append("policy_input")
    return differ


@dataclass
class Record:
    index: int
    kind: str
    ref_id: str
    body: dict[str, Any]
    leaf: bytes

    @property
    def name(self) -> str:
        return f"record {self.ref_id} ({self.kind}) at index {self.index}"


@dataclass
class Report:
    size: int = 0
    signed_size: int = 0
    problems: list[str] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)  # contiguous from index 0
    roots: list[bytes] = field(default_factory=list)  # roots[k - 1]: root of the first k
    witnesses: list[Any] = field(default_factory=list)  # witnesses.WitnessView

    @property
    def ok(self) -> bool:
        return not self.problems and not any(w.disagrees for w in self.witnesses)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": self.size,
            "signed_size": self.signed_size,
            "problems": self.problems,
            "witnesses": [w.as_json() for w in self.witnesses],
        }


def load_verifiers(path: Path) -> list[tlog.Verifier]:
    """The log's public keys (vkeys), by key id. Never a private key."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: the decision log's public keys (vkeys) are not there")
    return [v for v in tlog.read_vkeys(path.read_text(encoding="utf-8")) if v.kind == tlog.ED25519]


def verify_heads(
    heads: list[tuple], verifiers: list[tlog.Verifier], report: Report
) -> dict[int, str]:
    """Size -> root hex of every head whose signature by one of the log's keys verifies."""
    roots: dict[int, str] = {}
    unknown: dict[str, list[int]] = {}
    bad: list[int] = []
    for size, root_hex, key_id, signature in heads:
        try:
            checkpoint, _ = tlog.open_checkpoint(
                head_note(size, root_hex, key_id, signature), verifiers
            )
        except (tlog.NoteError, ValueError) as exc:
            if "signed by no known key" in str(exc):
                unknown.setdefault(key_id, []).append(size)
            else:
                bad.append(size)
            continue
        if checkpoint.size == size and checkpoint.root.hex() == root_hex:
            roots[size] = root_hex
    for key_id, sizes in unknown.items():
        report.problems.append(
            f"{len(sizes)} tree head(s) (sizes {sizes[0]}…{sizes[-1]}) are signed by "
            f"{key_id}, which is not one of the log's keys: forged or re-signed heads"
        )
    if bad:
        report.problems.append(
            f"{len(bad)} tree head(s) (first at size {bad[0]}): signature does not verify"
        )
    return roots


def verify_log(
    db: Path | str,
    verifiers: list[tlog.Verifier],
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Recompute every leaf and every root and check them against the signed tree heads, then
    every index table against the records. Names the first record altered, removed, moved or
    extra. `progress(done, total)` is called as records are checked."""
    entries, heads = read_only(
        db,
        ("select idx, kind, ref_id, body, leaf_hash from consent_log order by idx", {}),
        ("select size, root, key_id, signature from consent_tree_head order by size", {}),
    )
    report = Report(size=len(entries))
    roots = verify_heads(heads, verifiers, report)
    report.signed_size = max(roots, default=0)
    by_index = {e[0]: e for e in entries}
    frontier = merkle.Frontier()
    total = max(report.signed_size, len(entries))
    uncovered: tuple[int, str] | None = None
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
        if pos >= report.signed_size and uncovered is None:
            uncovered = (pos, entry[2])
        frontier = trial
    if uncovered is not None:
        pos, ref = uncovered
        report.problems.append(
            f"record {ref} at index {pos} is not covered by a signed tree head (nor are the "
            f"{len(entries) - pos - 1} after it)"
        )
    _records_as_stored(entries, report)
    check_index_tables(db, report)
    return report


def _records_as_stored(entries: list[tuple], report: Report) -> None:
    """The records from index 0 as they stand, and the root after each: what a witness's
    checkpoints are compared with."""
    frontier = merkle.Frontier()
    for pos, (idx, kind, ref_id, body, _) in enumerate(entries):
        if idx != pos:
            break
        leaf = merkle.leaf_hash(body.encode())
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            parsed = {}
        report.records.append(Record(idx, kind, ref_id, parsed, leaf))
        frontier.append(leaf)
        report.roots.append(frontier.root())


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


# -- the index tables ------------------------------------------------------------------------


def check_index_tables(db: Path | str, report: Report) -> None:
    """Every row of each index table against the record it was derived from, and back."""
    records = report.records
    decision_rows, consent_rows, review_rows = read_only(
        db,
        (f"select {', '.join(DECISION_COLUMNS)} from consent_decision", {}),
        (
            "select consent_id, case_id, version, status, policy, registered_by, log_index "
            "from consent_consent",
            {},
        ),
        ("select id, decision_id, verdict, note, reviewer, log_index from audit_review", {}),
    )
    _check_decisions(records, [row_dict(DECISION_COLUMNS, r) for r in decision_rows], report)
    _check_consents(records, consent_rows, report)
    _check_reviews(records, review_rows, report)
    if has_table(db, "consent_glass"):
        (glass_rows,) = read_only(
            db, ("select decision_id, justification_hash from consent_glass", {})
        )
        _check_glass(records, glass_rows, report)


def _check_decisions(records: list[Record], rows: list[dict[str, Any]], report: Report) -> None:
    by_id = {r["id"]: r for r in rows}
    logged = {}
    for rec in records:
        if rec.kind != "decision":
            continue
        logged[rec.ref_id] = rec
        row = by_id.get(rec.ref_id)
        if row is None:
            report.problems.append(
                f"decision {rec.ref_id}: its {rec.name} has no row in the decision table "
                "(the row was deleted)"
            )
            continue
        differ = decision_differences(row, rec.body, rec.leaf)
        if row["log_index"] != rec.index:
            differ.append("log_index")
        if differ:
            report.problems.append(
                f"decision {rec.ref_id}: table column(s) {', '.join(differ)} differ from "
                f"its log record at index {rec.index}"
            )
    for row in sorted(rows, key=lambda r: r["log_index"]):
        if row["id"] not in logged:
            report.problems.append(
                f"decision {row['id']}: table row (log index {row['log_index']}) has no "
                "record in the log (an extra row)"
            )


def _check_consents(records: list[Record], rows: list[tuple], report: Report) -> None:
    latest: dict[str, Record] = {}
    granted: dict[str, Record] = {}
    for rec in records:
        if rec.kind in ("consent.granted", "consent.withdrawn"):
            latest[rec.ref_id] = rec
            if rec.kind == "consent.granted":
                granted[rec.ref_id] = rec
    by_id = {r[0]: r for r in rows}
    for consent_id, rec in latest.items():
        row = by_id.get(consent_id)
        if row is None:
            report.problems.append(
                f"consent {consent_id}: its {rec.name} has no row in the consent table "
                "(the row was deleted)"
            )
            continue
        _, case_id, version, status, policy, registered_by, log_index = row
        grant = granted.get(consent_id)
        expected = {
            "case_id": rec.body.get("case_id"),
            "version": rec.body.get("version"),
            "status": "active" if rec.kind == "consent.granted" else "withdrawn",
            "policy": grant.body.get("policy") if grant else None,
            "registered_by": grant.body.get("registered_by") if grant else None,
            "log_index": rec.index,
        }
        actual = {
            "case_id": case_id,
            "version": version,
            "status": status,
            "policy": _json(policy),
            "registered_by": registered_by,
            "log_index": log_index,
        }
        differ = [k for k in expected if expected[k] != actual[k]]
        if differ:
            report.problems.append(
                f"consent {consent_id}: table column(s) {', '.join(differ)} differ from "
                f"its latest log record at index {rec.index}"
            )
    for consent_id, row in by_id.items():
        if consent_id not in latest:
            report.problems.append(
                f"consent {consent_id}: table row (log index {row[6]}) has no record in the "
                "log (an extra row)"
            )


def _check_reviews(records: list[Record], rows: list[tuple], report: Report) -> None:
    import hashlib

    logged = {r.ref_id: r for r in records if r.kind == "btg.review"}
    for review_id, decision_id, verdict, note, reviewer, log_index in rows:
        rec = logged.pop(review_id, None)
        if rec is None:
            report.problems.append(
                f"review {review_id} of decision {decision_id}: table row has no record in "
                "the log (an extra row)"
            )
            continue
        note_hash = "sha256:" + hashlib.sha256(note.encode()).hexdigest()
        actual = {
            "decision_id": decision_id,
            "verdict": verdict,
            "reviewer": reviewer,
            "note_hash": note_hash,
        }
        differ = [k for k, v in actual.items() if rec.body.get(k) != v]
        if log_index != rec.index:
            differ.append("log_index")
        if differ:
            report.problems.append(
                f"review {review_id}: table column(s) {', '.join(differ)} differ from its log "
                f"record at index {rec.index}"
            )
    for rec in logged.values():
        report.problems.append(
            f"review {rec.ref_id}: its {rec.name} has no row in the review table "
            "(the row was deleted)"
        )


def _check_glass(records: list[Record], rows: list[tuple], report: Report) -> None:
    stored = dict(rows)
    for rec in records:
        expected = rec.body.get("justification_hash") if rec.kind == "decision" else None
        if expected is None:
            continue
        got = stored.pop(rec.ref_id, None)
        if got != expected:
            problem = "is missing" if got is None else "differs from its logged hash"
            report.problems.append(
                f"decision {rec.ref_id}: the sealed break-the-glass justification {problem} "
                f"(log record at index {rec.index})"
            )
    for decision_id in stored:
        report.problems.append(
            f"decision {decision_id}: a break-the-glass justification without a logged "
            "decision (an extra row)"
        )


# -- one record ------------------------------------------------------------------------------


def prove_record(db: Path | str, verifiers: list[tlog.Verifier], ref_id: str) -> dict[str, Any]:
    """Inclusion proof of one record against the latest signed tree head, verified with the
    log's public keys."""
    hashes, rows, heads = read_only(
        db,
        ("select leaf_hash from consent_log order by idx", {}),
        (
            "select idx, body, leaf_hash from consent_log where ref_id = :ref_id "
            "order by idx desc limit 1",
            {"ref_id": ref_id},
        ),
        (
            "select size, root, key_id, signature from consent_tree_head "
            "order by size desc limit 1",
            {},
        ),
    )
    leaves = [bytes.fromhex(h) for (h,) in hashes]
    row, head = (rows or [None])[0], (heads or [None])[0]
    if row is None:
        return {"record": ref_id, "ok": False, "problem": "no record with this id in the log"}
    if head is None:
        return {"record": ref_id, "ok": False, "problem": "the log has no signed tree head"}
    size, root_hex, key_id, signature = head
    try:
        tlog.open_checkpoint(head_note(size, root_hex, key_id, signature), verifiers)
    except (tlog.NoteError, ValueError) as exc:
        problem = f"the latest tree head (size {size}) does not verify: {exc}"
        return {"record": ref_id, "ok": False, "problem": problem}
    index, body, _ = row
    leaf = merkle.leaf_hash(body.encode())
    proof = merkle.inclusion_proof(index, leaves[:size]) if index < size <= len(leaves) else []
    ok = index < size and merkle.verify_inclusion(index, size, leaf, proof, bytes.fromhex(root_hex))
    out = {
        "record": ref_id,
        "index": index,
        "tree_size": size,
        "root": root_hex,
        "key_id": key_id,
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


def check_decision(
    db: Path | str, verifiers: list[tlog.Verifier], row: dict[str, Any]
) -> dict[str, Any]:
    """One decision: its inclusion proof against the latest signed tree head, and every
    column of its table row compared with the logged record. `ok` only if both hold."""
    proof = prove_record(db, verifiers, row["id"])
    problems = [proof["problem"]] if not proof["ok"] else []
    (rows,) = read_only(
        db, ("select body from consent_log where idx = :idx", {"idx": row["log_index"]})
    )
    body = json.loads(rows[0][0]) if rows else None
    if body is None or body.get("id") != row["id"]:
        problems.append(f"no log record for this decision at index {row['log_index']}")
    else:
        leaf = merkle.leaf_hash(rows[0][0].encode())
        for name in decision_differences(row, body, leaf):
            problems.append(f"table column {name} differs from the logged record")
    return {**proof, "ok": not problems, "problems": problems}
