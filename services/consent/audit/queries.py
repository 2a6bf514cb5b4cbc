"""What the audit pages and `emaflyt audit` read: decision search with keyset paging, one
decision with its checked log record, consent history, access report, break-the-glass queue,
and the what-if comparison of a candidate policy. One place for both the pages and the CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.messages import DataCategory
from services.consent import verification
from services.consent.audit.store import AuditReview, AuditVerification
from services.consent.engine import POLICY_DIR, local_engine
from services.consent.store import ConsentRow, DecisionRecord, LogEntry, TreeHead

PAGE_SIZE = 25
OUTCOMES = ("allow", "withhold")
CATEGORIES = tuple(c.value for c in DataCategory)


@dataclass
class Filters:
    case_id: str = ""
    unit: str = ""
    data_category: str = ""
    outcome: str = ""
    legal_basis: str = ""
    since: date | None = None
    until: date | None = None

    @classmethod
    def parse(cls, q: Any) -> Filters:
        """From a query string or argparse namespace; a malformed date raises ValueError."""

        def get(name: str) -> str:
            value = q.get(name) if hasattr(q, "get") else getattr(q, name, None)
            return (value or "").strip()

        def day(name: str) -> date | None:
            return date.fromisoformat(get(name)) if get(name) else None

        return cls(
            get("case_id"),
            get("unit"),
            get("data_category"),
            get("outcome"),
            get("legal_basis"),
            day("since"),
            day("until"),
        )

    def query(self) -> dict[str, str]:
        return {
            k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.__dict__.items() if v
        }


def encode_cursor(row: DecisionRecord) -> str:
    """The position after a shown row: its own time and id, nothing about unseen rows."""
    raw = f"{row.decided_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    at, _, ident = raw.partition("|")
    return datetime.fromisoformat(at), ident


def _within(stmt: Select, since: date | None, until: date | None) -> Select:
    """Decisions made from `since` to `until`, both days inclusive (UTC)."""
    if since:
        stmt = stmt.where(DecisionRecord.decided_at >= datetime.combine(since, time(), UTC))
    if until:
        end = datetime.combine(until + timedelta(days=1), time(), UTC)
        stmt = stmt.where(DecisionRecord.decided_at < end)
    return stmt


async def search(
    session: AsyncSession, f: Filters, after: str | None = None, limit: int = PAGE_SIZE
) -> tuple[list[DecisionRecord], str | None]:
    """Newest first. Returns one page and the cursor of the next page, or None: no counts."""
    d = DecisionRecord
    stmt = select(d)
    if f.case_id:
        stmt = stmt.where(d.case_id == f.case_id)
    if f.unit:
        stmt = stmt.where(or_(d.source_unit == f.unit, d.recipient_unit == f.unit))
    if f.data_category:
        stmt = stmt.where(d.data_category == f.data_category)
    if f.outcome:
        stmt = stmt.where(d.outcome == f.outcome)
    if f.legal_basis:
        stmt = stmt.where(d.legal_basis.startswith(f.legal_basis, autoescape=True))
    stmt = _within(stmt, f.since, f.until)
    if after:
        at, ident = decode_cursor(after)
        stmt = stmt.where(or_(d.decided_at < at, and_(d.decided_at == at, d.id < ident)))
    stmt = stmt.order_by(d.decided_at.desc(), d.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if more and rows else None


def decision_dict(r: DecisionRecord) -> dict[str, Any]:
    return {
        "decision_id": r.id,
        "request_id": r.request_id,
        "case_id": r.case_id,
        "source_unit": r.source_unit,
        "recipient_unit": r.recipient_unit,
        "data_category": r.data_category,
        "purpose": r.purpose,
        "outcome": r.outcome,
        "legal_basis": r.legal_basis,
        "fields": r.fields,
        "obligations": r.obligations,
        "reasons": r.reasons,
        "reason_nb": r.reason_nb,
        "policy_revision": r.policy_revision,
        "data_version": r.data_version,
        "log_index": r.log_index,
        "record_hash": r.record_hash,
        "decided_at": r.decided_at.isoformat(),
    }


def consents_relied_on(r: DecisionRecord) -> list[str]:
    """The consent the decision was made on (its legal basis), if any."""
    if r.legal_basis and r.legal_basis.startswith("consent:"):
        return [r.legal_basis.split(":", 1)[1]]
    return []


def consents_in_force(r: DecisionRecord) -> list[str]:
    return [c.get("id", "?") for c in (r.policy_input or {}).get("consents", [])]


# -- checking one record ---------------------------------------------------------------------


def decision_row(r: DecisionRecord) -> dict[str, Any]:
    """The row with every column the log record determines (verification.DECISION_COLUMNS)."""
    return {name: getattr(r, name) for name in verification.DECISION_COLUMNS}


def check_decision(db: Path | str, verifiers: list[Any], r: DecisionRecord) -> dict[str, Any]:
    """The decision's inclusion proof against the latest signed tree head, and every column of
    its row compared with the logged record. `ok` only if both hold."""
    return verification.check_decision(db, verifiers, decision_row(r))


async def verify_and_record(
    sessions: Any,
    db: Path | str,
    verifiers: list[Any],
    by: str,
    progress: Callable[[int, int], None] | None = None,
    witnesses: Callable[[verification.Report], Any] | None = None,
) -> verification.Report:
    """Verify the whole log (and, given `witnesses`, ask them) and store the result, which the
    log status page shows."""
    report = await asyncio.to_thread(verification.verify_log, db, verifiers, progress)
    if witnesses is not None:
        await witnesses(report)
    problems = report.problems + [w.summary for w in report.witnesses if w.disagrees]
    views = [w.as_json() for w in report.witnesses]
    async with sessions() as session, session.begin():
        session.add(
            AuditVerification(
                by=by,
                ok=report.ok,
                size=report.size,
                signed_size=report.signed_size,
                problems=problems,
                witnesses=views,
            )
        )
    return report


async def latest_tree_head(session: AsyncSession) -> TreeHead | None:
    return await session.scalar(select(TreeHead).order_by(TreeHead.size.desc()).limit(1))


# -- consents, access report, break-the-glass ------------------------------------------------


async def consent_history(session: AsyncSession, case_id: str) -> list[dict[str, Any]]:
    """Every grant and withdrawal of the case's consents, from the log, oldest first."""
    ids = list(
        await session.scalars(select(ConsentRow.consent_id).where(ConsentRow.case_id == case_id))
    )
    if not ids:
        return []
    entries = await session.scalars(
        select(LogEntry)
        .where(LogEntry.ref_id.in_(ids), LogEntry.kind.startswith("consent."))
        .order_by(LogEntry.idx)
    )
    return [{"index": e.idx, "kind": e.kind, **json.loads(e.body)} for e in entries]


async def case_decisions(session: AsyncSession, case_id: str) -> list[DecisionRecord]:
    return list(
        await session.scalars(
            select(DecisionRecord)
            .where(DecisionRecord.case_id == case_id)
            .order_by(DecisionRecord.decided_at)
        )
    )


@dataclass
class GlassItem:
    decision: DecisionRecord
    deadline: datetime
    review: AuditReview | None

    @property
    def overdue(self) -> bool:
        return self.review is None and datetime.now(UTC) > self.deadline


async def glass_queue(session: AsyncSession, include_reviewed: bool = False) -> list[GlassItem]:
    """Break-the-glass releases, earliest deadline first; reviewed ones only if asked."""
    rows = await session.scalars(
        select(DecisionRecord).where(DecisionRecord.legal_basis.startswith("break_the_glass:"))
    )
    reviews = {r.decision_id: r for r in await session.scalars(select(AuditReview))}
    items = []
    for d in rows:
        hours = next(
            (o.get("within_hours") for o in d.obligations if o.get("kind") == "review"), 72
        )
        review = reviews.get(d.id)
        if review is None or include_reviewed:
            items.append(GlassItem(d, d.decided_at + timedelta(hours=hours or 72), review))
    return sorted(items, key=lambda i: i.deadline)


# -- what-if ---------------------------------------------------------------------------------


@dataclass
class Change:
    decision_id: str
    case_id: str
    decided_at: str
    data_category: str
    purpose: str
    recipient_unit: str
    outcome: str
    candidate_outcome: str
    fields: list[str]
    candidate_fields: list[str]
    candidate_reasons: list[str]


@dataclass
class WhatIf:
    revision: str
    checked: int = 0
    unchanged: int = 0
    no_input: int = 0
    changes: list[Change] = field(default_factory=list)
    error: str | None = None


def candidate_directory(module: str | None, rego: str | None, directory: Path | None) -> Path:
    """A policy directory to evaluate: a given one, or a copy of the current bundle with one
    module replaced (or added) by pasted Rego. The caller removes a copy when done."""
    if directory is not None:
        if not any(directory.glob("*.rego")):
            raise ValueError(f"{directory}: no .rego files in this directory")
        return directory
    if not rego or not rego.strip():
        raise ValueError("paste a Rego module or choose a policy directory")
    name = Path(module or "candidate.rego").name
    if not name.endswith(".rego") or name.endswith("_test.rego"):
        raise ValueError(f"module {name!r}: must be a .rego file name, not a test")
    tmp = Path(tempfile.mkdtemp(prefix="emaflyt-whatif-"))
    for path in POLICY_DIR.iterdir():
        if path.suffix in (".rego", ".json") and not path.name.endswith("_test.rego"):
            shutil.copy(path, tmp / path.name)
    (tmp / name).write_text(rego, encoding="utf-8")
    return tmp


async def decisions_between(
    session: AsyncSession, since: date | None, until: date | None
) -> list[DecisionRecord]:
    stmt = select(DecisionRecord).order_by(DecisionRecord.decided_at, DecisionRecord.id)
    return list(await session.scalars(_within(stmt, since, until)))


def what_if(
    directory: Path,
    decisions: list[DecisionRecord],
    progress: Callable[[int, int], None] | None = None,
) -> WhatIf:
    """Run the candidate policy over each decision's stored input and keep those whose
    outcome or released fields would change. Inputs erased with their case are counted."""
    engine = local_engine(directory)
    result = WhatIf(revision=engine.revision, error=engine.error)
    if engine.error:
        return result
    for n, d in enumerate(decisions, 1):
        if progress:
            progress(n, len(decisions))
        if not d.policy_input:
            result.no_input += 1
            continue
        out = engine.decide(d.policy_input)
        allow = bool(out.get("allow"))
        outcome = "allow" if allow else "withhold"
        fields = sorted(out.get("fields") or []) if allow else []
        result.checked += 1
        if outcome == d.outcome and fields == sorted(d.fields):
            result.unchanged += 1
            continue
        result.changes.append(
            Change(
                d.id,
                d.case_id,
                d.decided_at.isoformat(),
                d.data_category,
                d.purpose,
                d.recipient_unit,
                d.outcome,
                outcome,
                list(d.fields),
                fields,
                list(out.get("reasons") or []),
            )
        )
    return result
