"""The broker's handlers: learn cases; decide share requests, record, then answer."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from contracts.messages import CaseOpenedV1, ShareDecidedV1, ShareReceiptV1, ShareRequestV1
from services.consent.domain import GENESIS, policy_input, record_hash, sha256_json
from services.consent.engine import Engine
from services.consent.store import DecisionRecord, KnownCase
from services.kit.service import Context, HandlerFunc, Rejected

log = logging.getLogger("consent")

WITHHELD_NB = "Forespørselen om deling ble ikke innvilget. Ingen opplysninger ble sendt."
WITHHELD_EN = "The share request was not granted. No information was sent."


async def on_case_opened(ctx: Context) -> None:
    data: CaseOpenedV1 = ctx.data
    if await ctx.session.get(KnownCase, data.case_id) is None:
        ctx.session.add(KnownCase(case_id=data.case_id, birth_date=data.birth_date,
                                  birth_date_estimated=data.birth_date_estimated,
                                  care_centre=data.care_centre))  # fmt: skip


def make_share_request_handler(engine: Engine) -> HandlerFunc:
    async def on_share_request(ctx: Context) -> None:
        req: ShareRequestV1 = ctx.data
        if ctx.sender.id != req.source_unit and ctx.sender.kind != "service":
            raise Rejected(f"source_unit: {req.source_unit!r} is not the signing unit")
        case = await ctx.session.get(KnownCase, req.case_id)
        if case is None:
            raise Rejected(f"case_id: no open case {req.case_id!r} is known to the broker")
        directory = ctx.directory
        source, recipient = (
            await directory.get(req.source_unit),
            await directory.get(req.recipient_unit),
        )
        now = datetime.now(UTC)
        inputs = policy_input(
            req, birth_date=case.birth_date, birth_date_estimated=case.birth_date_estimated,
            source_kind=source.kind.value if source else None,
            recipient_kind=recipient.kind.value if recipient else None,
            consents=[], now=now,
        )  # fmt: skip
        decision = engine.decide(inputs)
        outcome = "allow" if decision["allow"] else "withhold"
        last = await ctx.session.scalar(
            select(DecisionRecord.record_hash).order_by(DecisionRecord.seq.desc()).limit(1)
        )
        prev = last or GENESIS
        record = {
            "id": str(uuid.uuid4()), "request_id": req.request_id, "case_id": req.case_id,
            "source_unit": req.source_unit, "recipient_unit": req.recipient_unit,
            "data_category": req.data_category.value, "purpose": req.purpose,
            "outcome": outcome, "legal_basis": decision.get("legal_basis"),
            "fields": list(decision.get("fields") or []),
            "reasons": list(decision.get("reasons") or []), "policy_input": inputs,
            "policy_revision": decision["policy_revision"],
            "payload_hash": sha256_json(req.payload.model_dump()),
            "decided_at": now.isoformat(),
        }  # fmt: skip
        digest = record_hash(record, prev)
        row = DecisionRecord(**{**record, "decided_at": now}, prev_hash=prev, record_hash=digest)
        ctx.session.add(row)
        # Recorded in this transaction before anything is answered or released (the outbox
        # publishes only after commit).
        ctx.emit("no.ema.share.decided.v1", ShareDecidedV1(
            decision_id=row.id, request_id=row.request_id, case_id=row.case_id,
            source_unit=row.source_unit, recipient_unit=row.recipient_unit,
            data_category=req.data_category, purpose=row.purpose, outcome=outcome,
            legal_basis=row.legal_basis, policy_revision=row.policy_revision, record_hash=digest,
        ), case_id=req.case_id)  # fmt: skip
        if outcome == "withhold":
            ctx.emit("no.ema.share.receipt.v1", ShareReceiptV1(
                request_id=req.request_id, decision_id=row.id, outcome="withheld",
                message_nb=WITHHELD_NB, message_en=WITHHELD_EN,
            ), case_id=req.case_id, unit=req.source_unit)  # fmt: skip
        else:
            raise Rejected("release is not implemented yet (issue 4): refusing to half-apply")
        log.info(
            "share decided",
            extra={
                "decision_id": row.id,
                "outcome": outcome,
                "category": row.data_category,
                "purpose": row.purpose,
            },
        )

    return on_share_request
