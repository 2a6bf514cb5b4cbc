"""The broker's handlers: learn cases; record consents; decide share requests, record the
decision in the Merkle log, then release (redacted, re-sealed) or answer "withheld"."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from contracts.messages import (
    CaseOpenedV2,
    CaseRepresentativeV1,
    CaseTransferredV1,
    ConsentGrantedV1,
    ConsentRecordedV1,
    ConsentWithdrawnV1,
    Obligation,
    ShareDecidedV1,
    ShareDeliveredV2,
    ShareReceiptV1,
    ShareRequestV2,
    UnitKind,
)
from services.consent import glass
from services.consent.consents import InvalidConsent, policy_form, validate_grant
from services.consent.domain import canonical, policy_input, redact, sha256_json
from services.consent.engine import Engine
from services.consent.log import Appended, DecisionLog
from services.consent.store import ConsentRow, DecisionRecord, KnownCase
from services.kit.db import per_transaction, queue_rows, write_queued
from services.kit.sealing import (
    HYBRID,
    CannotOpen,
    delivery_context,
    open_with,
    request_context,
    seal,
)
from services.kit.service import Context, HandlerFunc, NotYet, Rejected

log = logging.getLogger("consent")

CONSENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
WITHHELD_NB = "Forespørselen om deling ble ikke innvilget. Ingen opplysninger ble sendt."
WITHHELD_EN = "The share request was not granted. No information was sent."
RELEASED_NB = "Opplysningene ble sendt til mottakeren."
RELEASED_EN = "The information was sent to the recipient."


async def on_case_opened(ctx: Context) -> None:
    data: CaseOpenedV2 = ctx.data
    # Without flushing the batch's earlier rows (they go in with the commit, one statement per
    # table); a case added twice in one batch fails that commit on its key and the batch is
    # applied one message at a time.
    with ctx.session.sync_session.no_autoflush:
        known = await ctx.session.get(KnownCase, data.case_id)
    if known is None:
        ctx.session.add(
            KnownCase(
                case_id=data.case_id,
                birth_date=data.birth_date,
                birth_date_estimated=data.birth_date_estimated,
                care_centre=data.care_centre,
                case_ref=data.case_ref,
                linked_units=[data.care_centre],
            )
        )


async def on_case_changed(ctx: Context) -> None:
    """A representative appointed, or the child moved: units break-the-glass may come from."""
    data: CaseRepresentativeV1 | CaseTransferredV1 = ctx.data
    case = await ctx.session.get(KnownCase, data.case_id)
    if case is None:
        raise NotYet(f"case_id: case {data.case_id!r} is not opened here yet")
    if isinstance(data, CaseRepresentativeV1):
        case.representative_unit = data.representative_unit
    else:
        case.care_centre = data.to_centre
        case.linked_units = sorted({*(case.linked_units or []), data.from_centre, data.to_centre})


LOCKED = "consent_locked_cases"
CONSENTS = "consent_consents_read"


async def lock_case(ctx: Context, case_id: str) -> KnownCase | None:
    """Take the case's lock for the rest of the transaction: a row lock on PostgreSQL; on
    SQLite the database's write lock, held since the inbox row was written (written here,
    not at commit: services/kit/db.py::write_queued). A share decision takes it before it
    reads consents and a consent change before it writes, so a withdrawal and a decision on
    the same case never interleave. A lock once taken is held to the commit: the rest of a
    batch's messages on the same case find it (and the case) without asking again."""
    locked: dict[str, KnownCase | None] = per_transaction(ctx.session, LOCKED, dict)
    if not locked:
        await ctx.session.flush()
        await write_queued(ctx.session)
    if case_id not in locked:
        locked[case_id] = await ctx.session.scalar(
            select(KnownCase).where(KnownCase.case_id == case_id).with_for_update()
        )
    return locked[case_id]


async def active_consents(ctx: Context, case_id: str) -> list[dict[str, Any]]:
    """The policy forms of the case's active consents, read under the case's lock (taken
    first, lock_case). Kept for the transaction: with the lock held no other transaction
    changes them, and a consent change in this one forgets them (forget_consents)."""
    read: dict[str, list[dict[str, Any]]] = per_transaction(ctx.session, CONSENTS, dict)
    if case_id not in read:
        read[case_id] = list(
            (
                await ctx.session.scalars(
                    select(ConsentRow.policy)
                    .where(ConsentRow.case_id == case_id, ConsentRow.status == "active")
                    .order_by(ConsentRow.consent_id)
                )
            ).all()
        )
    return read[case_id]


def forget_consents(ctx: Context, case_id: str) -> None:
    per_transaction(ctx.session, CONSENTS, dict).pop(case_id, None)


def may_register(case: KnownCase, unit: str) -> bool:
    """Only the case's care centre or its representative registers a consent for the child."""
    return unit in (case.care_centre, case.representative_unit)


def may_change(case: KnownCase, row: ConsentRow, unit: str) -> bool:
    """Only the consent's registrant or the child's representative changes or withdraws it."""
    return unit in (row.registered_by, case.representative_unit)


def make_consent_handler(legal: dict[str, Any], decision_log: DecisionLog) -> HandlerFunc:
    async def on_consent(ctx: Context) -> None:
        if isinstance(ctx.data, ConsentGrantedV1):
            await _granted(ctx, ctx.data, legal, decision_log)
        else:
            await _withdrawn(ctx, ctx.data, decision_log)

    return on_consent


def _check_consent_id(consent_id: str) -> None:
    if not CONSENT_ID.fullmatch(consent_id):
        raise Rejected(
            "consent_id: use letters, digits and . _ : - only (1-128, starting with a "
            "letter or digit)"
        )


async def _granted(
    ctx: Context, data: ConsentGrantedV1, legal: dict[str, Any], decision_log: DecisionLog
) -> None:
    _check_consent_id(data.consent_id)
    case = await lock_case(ctx, data.case_id)
    if case is None:
        raise Rejected(f"case_id: no open case {data.case_id!r} is known to the broker")
    row = await ctx.session.get(ConsentRow, data.consent_id)
    if row is not None and row.case_id != data.case_id:
        raise Rejected("consent_id: already used for another case; choose a new id")
    if row is None and not may_register(case, ctx.sender.id):
        raise Rejected(
            f"sender: {ctx.sender.id} may not register consents for this case; only "
            "the case's care centre or the child's representative may"
        )
    if row is not None and not may_change(case, row, ctx.sender.id):
        raise Rejected(
            f"sender: {ctx.sender.id} may not change this consent; only the unit that "
            "registered it or the child's representative may"
        )
    if row is not None and row.version >= data.version:
        raise Rejected(f"version: version {row.version} is recorded; raise version to change it")
    try:
        validate_grant(
            data,
            birth_date=case.birth_date,
            now=datetime.now(UTC),
            legal=legal,
            estimated=case.birth_date_estimated,
        )
    except InvalidConsent as exc:
        raise Rejected(str(exc)) from None
    policy = policy_form(data)
    body = {
        "kind": "consent.granted",
        "consent_id": data.consent_id,
        "version": data.version,
        "case_id": data.case_id,
        "grantor": data.grantor.model_dump(mode="json"),
        "form": data.form.model_dump(mode="json"),
        "policy": policy,
        "child_heard": data.child_heard.model_dump(mode="json"),
        "granted_at": data.granted_at.isoformat(),
        # Who registered it stays who registered it; a change names who made it.
        "registered_by": row.registered_by if row is not None else ctx.sender.id,
        "changed_by": ctx.sender.id,
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    forget_consents(ctx, data.case_id)
    logged = await decision_log.append(
        ctx.session, ctx.outbox, "consent.granted", data.consent_id, body
    )
    index, leaf = logged.index, logged.record_hash
    if row is None:
        row = ConsentRow(consent_id=data.consent_id, case_id=data.case_id)
        ctx.session.add(row)
    row.version, row.status, row.policy = data.version, "active", policy
    row.registered_by = row.registered_by or ctx.sender.id
    row.log_index, row.updated_at = index, datetime.now(UTC)
    _ack(ctx, data.consent_id, data.case_id, "active", data.version, index, leaf)


async def _withdrawn(ctx: Context, data: ConsentWithdrawnV1, decision_log: DecisionLog) -> None:
    _check_consent_id(data.consent_id)
    await lock_case(ctx, data.case_id)
    row = await ctx.session.get(ConsentRow, data.consent_id)
    case = await ctx.session.get(KnownCase, data.case_id)
    if row is None or case is None or row.case_id != data.case_id:
        raise Rejected("consent_id: no such consent for this case")
    if not may_change(case, row, ctx.sender.id):
        raise Rejected(
            f"sender: {ctx.sender.id} may not withdraw this consent; only the unit "
            "that registered it or the child's representative may"
        )
    if row.status == "withdrawn":
        raise Rejected("consent_id: the consent is already withdrawn")
    body = {
        "kind": "consent.withdrawn",
        "consent_id": data.consent_id,
        "version": row.version,
        "case_id": data.case_id,
        "withdrawn_by": data.withdrawn_by.value,
        "withdrawn_at": data.withdrawn_at.isoformat(),
        "registered_by": ctx.sender.id,
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    forget_consents(ctx, data.case_id)
    logged = await decision_log.append(
        ctx.session, ctx.outbox, "consent.withdrawn", data.consent_id, body
    )
    index, leaf = logged.index, logged.record_hash
    row.status, row.log_index, row.updated_at = "withdrawn", index, datetime.now(UTC)
    _ack(ctx, data.consent_id, data.case_id, "withdrawn", row.version, index, leaf)


def _ack(
    ctx: Context, consent_id: str, case_id: str, status: str, version: int, index: int, leaf: str
) -> None:
    ctx.emit(
        "no.ema.consent.recorded.v1",
        ConsentRecordedV1(
            consent_id=consent_id,
            case_id=case_id,
            status=status,
            version=version,
            log_index=index,
            record_hash=leaf,
        ),
        case_id=case_id,
        unit=ctx.sender.id,
    )
    log.info(
        "consent recorded", extra={"consent_id": consent_id, "status": status, "log_index": index}
    )


RETIRED_V1 = (
    "no.ema.share.request.v1 is retired: its sealing is not bound to the request, so a copied "
    "payload could be submitted again by another unit; send no.ema.share.request.v2 "
    "(contracts/README.md §7)"
)


async def on_share_request_v1(ctx: Context) -> None:
    raise Rejected(RETIRED_V1)


def make_share_request_handler(
    engine: Engine, state: dict[str, Any], decision_log: DecisionLog
) -> HandlerFunc:
    async def on_share_request(ctx: Context) -> None:
        req: ShareRequestV2 = ctx.data
        # A unit speaks for itself; emaflyt's own services may send on a unit's behalf (the
        # settlement offer, for the Bufetat region whose profile it carries).
        if ctx.sender.id != req.source_unit and ctx.sender.kind != UnitKind.SERVICE:
            raise Rejected(f"source_unit: {req.source_unit!r} is not the signing unit")
        # The payload must open under this very request's context before anything else: a
        # payload copied from another request, sender, case or purpose never does.
        plaintext = _open(req, state)
        source = await ctx.directory.get(req.source_unit)
        recipient = await ctx.directory.get(req.recipient_unit)
        # The case's lock before the consents are read, held through the policy evaluation
        # until the decision is logged and committed: a withdrawal waits for it, or is seen.
        case = await lock_case(ctx, req.case_id)
        if case is None:
            raise Rejected(f"case_id: no open case {req.case_id!r} is known to the broker")
        consents = await active_consents(ctx, req.case_id)
        now = datetime.now(UTC)
        inputs = policy_input(
            req,
            birth_date=case.birth_date,
            birth_date_estimated=case.birth_date_estimated,
            source_kind=source.kind.value if source else None,
            recipient_kind=recipient.kind.value if recipient else None,
            consents=consents,
            now=now,
        )
        glass_refused = None
        if req.break_the_glass is not None:
            # The releases of this batch so far count (linked units, the limit): write them.
            await write_queued(ctx.session)
            kind = recipient.kind.value if recipient else None
            glass_refused = await glass.refusal(ctx.session, ctx.settings, case, req, kind, now)
        decision = await engine.evaluate(inputs)
        decision_id = str(uuid.uuid4())
        allow = bool(decision["allow"])
        reasons = list(decision.get("reasons") or [])
        fields = list(decision.get("fields") or []) if allow else []
        # The gate binds a release that would rest on break-the-glass, not one a consent or a
        # statute allows anyway.
        if (
            glass_refused
            and allow
            and (decision.get("basis") or {}).get("kind") == ("break_the_glass")
        ):
            allow, fields = False, []
            reasons.append(glass_refused)
        suite = state["sealing_suite"]
        recipient_key = recipient.sealing_for(suite) if recipient else None
        if allow and recipient_key is None:
            allow, fields = False, []
            reasons.append(
                f"recipient has no {suite} sealing key registered: nothing can be delivered"
            )
        sealed = content_hash = None
        if allow:
            assert recipient_key is not None
            content = canonical(
                {
                    "decision_id": decision_id,
                    "salt": base64.b64encode(os.urandom(16)).decode(),
                    "data": redact(plaintext, fields),
                }
            )
            content_hash = "sha256:" + hashlib.sha256(content).hexdigest()
            info = delivery_context(
                decision_id,
                req.case_id,
                req.request_id,
                req.source_unit,
                req.recipient_unit,
                req.data_category.value,
                req.purpose,
            )
            sealed = seal(content, suite, recipient_key.public_key, info)
        outcome = "allow" if allow else "withhold"
        obligations = list(decision.get("obligations") or []) if allow else []
        legal_basis = decision.get("legal_basis") if allow else None
        # The policy's own words only if its outcome stands (not overridden above).
        reason_nb = decision.get("reason_nb") if allow == bool(decision["allow"]) else None
        record = {
            "kind": "decision",
            "id": decision_id,
            "request_id": req.request_id,
            "case_id": req.case_id,
            "source_unit": req.source_unit,
            "recipient_unit": req.recipient_unit,
            "data_category": req.data_category.value,
            "purpose": req.purpose,
            "outcome": outcome,
            "legal_basis": legal_basis,
            "basis": decision.get("basis") if allow else None,
            "fields": fields,
            "obligations": obligations,
            "reasons": reasons,
            "reason_nb": reason_nb or WITHHELD_NB,
            "break_the_glass": req.break_the_glass is not None,
            "policy_revision": decision["policy_revision"],
            "data_version": decision.get("data_version") or "unknown",
            "policy_input_hash": sha256_json(inputs),
            "payload_hash": sha256_json(req.payload.model_dump()),
            "content_hash": content_hash,
            "decided_at": now.isoformat(),
        }
        if req.break_the_glass is not None:
            justification, record["justification_hash"] = glass.sealed_justification(
                req, decision_id, state["sealing_keys"][0]
            )

        # What follows goes to the outbox in this transaction, once the log has signed the head
        # over this batch's records (services/consent/log.py): it is published only after the
        # decision record is committed (record before release), with the head and the record's
        # inclusion proof.
        def release(logged: Appended) -> None:
            ctx.emit(
                "no.ema.share.decided.v1",
                ShareDecidedV1(
                    decision_id=decision_id,
                    request_id=req.request_id,
                    case_id=req.case_id,
                    source_unit=req.source_unit,
                    recipient_unit=req.recipient_unit,
                    data_category=req.data_category,
                    purpose=req.purpose,
                    outcome=outcome,
                    legal_basis=legal_basis,
                    policy_revision=record["policy_revision"],
                    record_hash=logged.record_hash,
                ),
                case_id=req.case_id,
            )
            if allow:
                assert sealed is not None and content_hash is not None and legal_basis
                ctx.emit(
                    "no.ema.share.delivered.v2",
                    ShareDeliveredV2(
                        decision_id=decision_id,
                        request_id=req.request_id,
                        case_id=req.case_id,
                        source_unit=req.source_unit,
                        recipient_unit=req.recipient_unit,
                        data_category=req.data_category,
                        purpose=req.purpose,
                        fields=fields,
                        legal_basis=legal_basis,
                        obligations=[Obligation(**o) for o in obligations],
                        payload=sealed,
                        content_hash=content_hash,
                        record_hash=logged.record_hash,
                        log_index=logged.index,
                        checkpoint=logged.checkpoint,
                        inclusion_proof=logged.proof_b64,
                    ),
                    case_id=req.case_id,
                    unit=req.recipient_unit,
                )
            ctx.emit(
                "no.ema.share.receipt.v1",
                ShareReceiptV1(
                    request_id=req.request_id,
                    decision_id=decision_id,
                    outcome="released" if allow else "withheld",
                    message_nb=RELEASED_NB if allow else WITHHELD_NB,
                    message_en=RELEASED_EN if allow else WITHHELD_EN,
                ),
                case_id=req.case_id,
                unit=req.source_unit,
            )

        logged = await decision_log.append(
            ctx.session, ctx.outbox, "decision", decision_id, record, then=release
        )
        index, leaf = logged.index, logged.record_hash
        queue_rows(
            ctx.session,
            DecisionRecord,
            dict(
                id=decision_id,
                request_id=req.request_id,
                case_id=req.case_id,
                source_unit=req.source_unit,
                recipient_unit=req.recipient_unit,
                data_category=req.data_category.value,
                purpose=req.purpose,
                outcome=outcome,
                legal_basis=legal_basis,
                fields=fields,
                obligations=obligations,
                reasons=reasons,
                reason_nb=record["reason_nb"],
                policy_input=inputs,
                policy_revision=record["policy_revision"],
                data_version=record["data_version"],
                log_index=index,
                record_hash=leaf,
                decided_at=now,
            ),
        )
        if req.break_the_glass is not None:
            glass.record(
                ctx,
                case,
                req,
                decision_id,
                outcome,
                fields,
                obligations,
                justification,
                record["justification_hash"],
                now,
            )
        log.info(
            "share decided",
            extra={
                "decision_id": decision_id,
                "outcome": outcome,
                "category": req.data_category.value,
                "purpose": req.purpose,
                "log_index": index,
            },
        )

    return on_share_request


def _open(req: ShareRequestV2, state: dict[str, Any]) -> Any:
    if "sealing_keys" not in state:
        raise RuntimeError("the broker's sealing keys are not loaded yet")
    required = state["sealing_suite"]
    if required == HYBRID and req.payload.suite != HYBRID:
        raise Rejected(
            f"payload.suite: this broker requires {HYBRID} (post-quantum hybrid); "
            "seal to svc-consent's key of that suite"
        )
    info = request_context(
        req.case_id,
        req.request_id,
        req.source_unit,
        req.recipient_unit,
        req.data_category.value,
        req.purpose,
    )
    try:
        opened = open_with(state["sealing_keys"], req.payload, info)
    except CannotOpen:
        raise Rejected(
            "payload: does not open for this request; seal it to svc-consent's sealing key "
            "with this request's context (case_id, request_id, source_unit, recipient_unit, "
            "data_category, purpose) as HPKE info (contracts/README.md §7)"
        ) from None
    try:
        return json.loads(opened)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Rejected("payload: the opened content is not JSON") from None
