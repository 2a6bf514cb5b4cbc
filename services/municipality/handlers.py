"""Municipality handlers: capacity, readiness (residence + profile), offers and answers,
refund claims. Confidential profile values are stored for matching but never logged, and a
rejection names the field and the rule, not the value."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update

from contracts import messages as m
from contracts.messages import UnitKind
from services.kit.clock import OSLO, set_today, today
from services.kit.sealing import SUITE_SETTINGS, request_context, seal
from services.kit.service import Context, HandlerFunc, NotYet, Rejected
from services.municipality import domain
from services.municipality.followup import domain as followup
from services.municipality.followup.handlers import moved_in, start_handover
from services.municipality.reference import Register
from services.municipality.store import (
    Capacity,
    Child,
    FollowUp,
    Offer,
    Placement,
    RefundClaim,
    child_row,
)

log = logging.getLogger("municipality")
CONSENT_UNIT = "svc-consent"
__all__ = ["OSLO", "Deps", "make_handlers", "move_in_due", "escalate_due", "set_today", "today"]


def unit_of(kommunenummer: str) -> str:
    return f"kommune-{kommunenummer}"


@dataclass
class Deps:
    register: Register
    catalogue: domain.Catalogue
    refund_rules: domain.RefundRules
    answer_hours: float = 168.0
    rules: followup.Rules = field(default_factory=followup.load_rules)


def _own_municipality(ctx: Context, kommunenummer: str, field: str = "kommunenummer") -> None:
    if ctx.sender.kind == UnitKind.MUNICIPALITY and ctx.sender.id != unit_of(kommunenummer):
        raise Rejected(
            f"{field}: unit {ctx.sender.id!r} may only act for itself ({unit_of(kommunenummer)!r})"
        )


def make_handlers(deps: Deps) -> dict[str, HandlerFunc]:
    register, catalogue = deps.register, deps.catalogue

    async def store_capacity(
        ctx: Context,
        kommunenummer: str,
        year: int,
        children: int,
        offers: list[dict],
        competences: list[str],
        free: int,
    ) -> None:
        municipality = register.get(kommunenummer)
        if municipality is None:
            raise Rejected(
                f"kommunenummer: {kommunenummer!r} is not a municipality in {register.source}"
            )
        _own_municipality(ctx, kommunenummer)
        if free > children:
            raise Rejected(
                f"free_places: {free} exceeds the {children} children the council decided to settle"
            )
        row = await ctx.session.get(Capacity, (kommunenummer, year))
        if row is None:
            row = Capacity(kommunenummer=kommunenummer, year=year)
            ctx.session.add(row)
        row.bufetat_region = municipality.bufetat_region
        row.children, row.free_places = children, free
        row.measures = sorted({o["measure"] for o in offers})
        row.offers, row.competences = offers, competences
        log.info(
            "capacity recorded",
            extra={"kommunenummer": kommunenummer, "year": year, "free_places": free},
        )

    async def capacity_v1(ctx: Context) -> None:
        data: m.CapacityPublishedV1 = ctx.data
        offers = [{"measure": x, "min_age": 0, "max_age": 17} for x in data.measures]
        await store_capacity(
            ctx, data.kommunenummer, data.year, data.children, offers, [], data.free_places
        )

    async def capacity_v2(ctx: Context) -> None:
        data: m.CapacityPublishedV2 = ctx.data
        for i, o in enumerate(data.offers):
            if o.measure not in catalogue.measures:
                raise Rejected(f"offers[{i}].measure: not a measure in measures.json")
            if o.min_age > o.max_age:
                raise Rejected(f"offers[{i}].min_age: the age band is empty")
        if any(c not in catalogue.care_needs for c in data.competences):
            raise Rejected("competences: every entry must be a care need in measures.json")
        await store_capacity(
            ctx,
            data.kommunenummer,
            data.year,
            data.children,
            [o.model_dump() for o in data.offers],
            data.competences,
            data.free_places,
        )

    async def residence(ctx: Context) -> None:
        """A refusal closes nothing: the case may be appealed and granted by UNE, and only
        settlement or departure ends the stay (case.closed). Only a grant makes the child
        ready; a limited permit does not lead to settlement (ADR 0011, verify)."""
        data: m.CaseResidenceDecidedV2 = ctx.data
        child = await child_row(ctx.session, data.case_id)
        child.case_ref, child.residence = data.case_ref, data.outcome
        child.residence_decided_on = data.decided_on
        child.deadline = domain.deadline_for(data.decided_on)
        fu = await ctx.session.get(FollowUp, data.case_id)
        if fu is not None:  # a later decision (UNE, a renewed permit) follows the settled child
            fu.residence, fu.residence_decided_on = data.outcome, data.decided_on

    async def closed(ctx: Context) -> None:
        data: m.CaseClosedV1 = ctx.data
        child = await ctx.session.get(Child, data.case_id)
        if child is not None and child.status in ("open", "accepted"):
            child.status = "closed"

    async def profile(ctx: Context) -> None:
        data: m.SettlementProfileV1 = ctx.data
        regions = {x.bufetat_region for x in register.municipalities.values()}
        if data.bufetat_region not in regions:
            raise Rejected("bufetat_region: not a Bufetat region in the register")
        if data.recommended_measure not in catalogue.measures:
            raise Rejected("recommended_measure: not a measure in measures.json")
        if any(c not in catalogue.care_needs for c in data.care_needs):
            raise Rejected("care_needs: every entry must be a care need in measures.json")
        for name in ("family_municipalities", "network_municipalities"):
            if any(register.get(k) is None for k in getattr(data, name)):
                raise Rejected(f"{name}: every entry must be a municipality in the register")
        if data.case_id in data.siblings:
            raise Rejected("siblings: a child is not its own sibling")
        child = await child_row(ctx.session, data.case_id)
        if child.status != "open":
            raise Rejected(f"case_id: the child is {child.status}; a profile changes nothing")
        child.bufetat_region, child.profile_from = data.bufetat_region, ctx.sender.id
        child.measure, child.birth_date = data.recommended_measure, data.birth_date
        child.languages, child.care_needs = list(data.languages), sorted(set(data.care_needs))
        child.family = sorted(set(data.family_municipalities))
        child.network = sorted(set(data.network_municipalities))
        child.siblings, child.kopp_on = sorted(set(data.siblings)), data.kopp_on
        log.info("settlement profile recorded", extra={"case": data.case_id})

    async def offer_requested(ctx: Context) -> None:
        data: m.OfferRequestedV1 = ctx.data
        if await ctx.session.get(Offer, data.offer_id):
            raise Rejected("offer_id: an offer with this id exists; use a new id")
        child = await ctx.session.get(Child, data.case_id)
        if child is None or not child.ready:
            raise Rejected(
                "case_id: the child is not ready for settlement (needs residence "
                "granted, a settlement profile and an open case)"
            )
        if register.get(data.kommunenummer) is None:
            raise Rejected("kommunenummer: not a municipality in the register")
        year = today().year
        cap = await ctx.session.get(Capacity, (data.kommunenummer, year))
        if cap is None:
            raise Rejected(f"kommunenummer: the municipality has published no capacity for {year}")
        age = domain.age_on(child.birth_date, today())
        if not any(
            o["measure"] == data.measure and o["min_age"] <= age <= o["max_age"] for o in cap.offers
        ):
            raise Rejected(
                "measure: the municipality does not offer this measure for the child's age"
            )
        pending = await ctx.session.scalar(
            select(Offer.offer_id).where(
                Offer.case_id == data.case_id,
                Offer.kommunenummer == data.kommunenummer,
                Offer.status == "pending",
            )
        )
        if pending:
            raise Rejected(
                "kommunenummer: an offer of this child to this municipality is "
                "already waiting for an answer"
            )
        suite = SUITE_SETTINGS[ctx.settings.sealing_suite]
        unit = await ctx.directory.get(CONSENT_UNIT)
        broker_key = unit.sealing_for(suite) if unit else None
        if broker_key is None:
            raise NotYet("the consent broker's sealing key is not published yet")
        # What settlement needs (K11), sealed to the broker: it decides what is released. The
        # care needs, measure, family ties, network and siblings come from the KOPP, so the
        # flow is category kopp and needs written consent (bvl § 5A-6); its source is the
        # Bufetat region whose settlement profile it is (ADR 0011).
        payload = domain.offer_payload(
            child.case_id,
            age,
            child.languages,
            child.measure,
            child.care_needs,
            child.family,
            child.network,
            child.siblings,
            data.kommunenummer,
        )
        request_id = f"settlement-{data.offer_id}"
        # The request speaks for the Bufetat region whose profile it is; the municipality
        # service sends it on the region's behalf (a service may; units speak for themselves).
        source = child.profile_from or ctx.sender.id
        recipient = unit_of(data.kommunenummer)
        category, purpose = m.DataCategory.KOPP, "settlement"
        info = request_context(child.case_id, request_id, source, recipient, category, purpose)
        ctx.emit(
            "no.ema.share.request.v2",
            m.ShareRequestV2(
                request_id=request_id,
                case_id=child.case_id,
                source_unit=source,
                recipient_unit=recipient,
                data_category=category,
                purpose=purpose,
                payload=seal(json.dumps(payload).encode(), suite, broker_key.public_key, info),
            ),
            case_id=child.case_id,
        )
        answer_by = data.answer_by or datetime.now(UTC) + timedelta(hours=deps.answer_hours)
        ctx.session.add(
            Offer(
                offer_id=data.offer_id,
                case_id=child.case_id,
                kommunenummer=data.kommunenummer,
                bufetat_region=child.bufetat_region or "",
                requested_by=ctx.sender.id,
                measure=data.measure,
                status="pending",
                answer_by=answer_by,
                year=year,
                share_request_id=request_id,
            )
        )
        ctx.emit(
            "no.ema.municipality.offer.v1",
            m.SettlementOfferV1(
                offer_id=data.offer_id,
                case_id=child.case_id,
                case_ref=child.case_ref or "",
                kommunenummer=data.kommunenummer,
                measure=data.measure,
                answer_by=answer_by,
                share_request_id=request_id,
            ),
            case_id=child.case_id,
            unit=unit_of(data.kommunenummer),
        )
        log.info(
            "offer sent",
            extra={
                "case": child.case_id,
                "offer": data.offer_id,
                "kommunenummer": data.kommunenummer,
            },
        )

    def answer(ctx: Context, offer: Offer, outcome: str, nb: str, en: str) -> None:
        ctx.emit(
            "no.ema.municipality.offer-outcome.v1",
            m.OfferOutcomeV1(
                offer_id=offer.offer_id,
                case_id=offer.case_id,
                outcome=outcome,
                message_nb=nb,
                message_en=en,
            ),
            case_id=offer.case_id,
            unit=unit_of(offer.kommunenummer),
        )

    async def refuse(ctx: Context, offer: Offer, nb: str, en: str) -> None:
        await ctx.session.execute(
            update(Offer)
            .where(Offer.offer_id == offer.offer_id, Offer.status == "pending")
            .values(status="refused", reason=en, answered_at=datetime.now(UTC))
        )
        answer(ctx, offer, "refused", nb, en)
        log.info("answer refused", extra={"offer": offer.offer_id, "case": offer.case_id})

    async def offer_answered(ctx: Context) -> None:
        """v1 or v2: v2 names the units that receive the handover."""
        data: m.OfferAnsweredV1 | m.OfferAnsweredV2 = ctx.data
        recipients = getattr(data, "handover_to", None)
        offer = await ctx.session.get(Offer, data.offer_id)
        if offer is None:
            raise Rejected("offer_id: no such offer")
        if ctx.sender.id != unit_of(offer.kommunenummer):
            raise Rejected("offer_id: the offer is addressed to another municipality")
        if data.answer == "decline" and not data.reason:
            raise Rejected("reason: a decline needs a reason")
        if data.answer == "accept" and (data.settle_on is None or data.measure is None):
            raise Rejected("settle_on: an acceptance needs a settlement date and a measure")
        if data.answer == "accept" and data.measure not in catalogue.measures:
            raise Rejected("measure: not a measure in measures.json")
        if isinstance(data, m.OfferAnsweredV2) and data.answer == "accept" and not recipients:
            raise Rejected(
                "handover_to: an acceptance names the barnevern, school and health "
                "station that receive the handover"
            )
        if offer.status != "pending":
            answer(
                ctx,
                offer,
                "refused",
                f"Tilbudet er ikke lenger åpent ({offer.status}).",
                f"The offer is no longer open ({offer.status}); nothing was changed.",
            )
            return
        now = datetime.now(UTC)
        if data.answer == "decline":
            offer.status, offer.reason, offer.answered_at = "declined", data.reason, now
            answer(
                ctx,
                offer,
                "declined",
                "Avslaget er registrert; Bufetat finner ny kommune.",
                "The decline is recorded; Bufetat looks for another municipality.",
            )
            log.info("offer declined", extra={"offer": offer.offer_id, "case": offer.case_id})
            return
        assert data.settle_on is not None and data.measure is not None
        child = await ctx.session.get(Child, offer.case_id)
        assert child is not None
        if child.residence_decided_on and data.settle_on < child.residence_decided_on:
            raise Rejected("settle_on: lies before the residence decision")
        # Conditional updates: the child is taken only while open, a place only while free.
        took_child = await ctx.session.execute(
            update(Child)
            .where(Child.case_id == offer.case_id, Child.status == "open")
            .values(status="accepted", kommunenummer=offer.kommunenummer, settled_on=data.settle_on)
        )
        if took_child.rowcount != 1:
            await refuse(
                ctx,
                offer,
                "Barnet er allerede bosatt eller saken er lukket; aksepten ble ikke gjennomført.",
                "The child has already been settled "
                "or the case is closed; your acceptance was not applied.",
            )
            return
        took_place = await ctx.session.execute(
            update(Capacity)
            .where(
                Capacity.kommunenummer == offer.kommunenummer,
                Capacity.year == offer.year,
                Capacity.free_places > 0,
            )
            .values(free_places=Capacity.free_places - 1)
        )
        if took_place.rowcount != 1:
            await ctx.session.execute(
                update(Child)
                .where(Child.case_id == offer.case_id)
                .values(status="open", kommunenummer=None, settled_on=None)
            )
            await refuse(
                ctx,
                offer,
                "Kommunen har ingen ledig plass igjen; publiser ny kapasitet før aksept.",
                "Your municipality has no free place left; publish new capacity before accepting.",
            )
            return
        await ctx.session.execute(
            update(Offer)
            .where(Offer.offer_id == offer.offer_id)
            .values(status="accepted", measure=data.measure, answered_at=now)
        )
        deadline = child.deadline or data.settle_on
        ctx.session.add(
            Placement(
                case_id=offer.case_id,
                offer_id=offer.offer_id,
                kommunenummer=offer.kommunenummer,
                year=offer.year,
                measure=data.measure,
                settled_on=data.settle_on,
                within_deadline=data.settle_on <= deadline,
                days_waited=(data.settle_on - (child.residence_decided_on or data.settle_on)).days,
            )
        )
        others = (
            await ctx.session.scalars(
                select(Offer).where(
                    Offer.case_id == offer.case_id,
                    Offer.status == "pending",
                    Offer.offer_id != offer.offer_id,
                )
            )
        ).all()
        for other in others:
            other.status, other.reason, other.answered_at = "withdrawn", "settled elsewhere", now
            answer(
                ctx,
                other,
                "refused",
                "Tilbudet er trukket: barnet er bosatt i en annen kommune.",
                "The offer is withdrawn: the child was settled in another municipality.",
            )
        # Accepting is not moving in: the move-in day is agreed now, and the centre stay ends
        # on that day (case.settled then, from the move-in timer, or now if it has come).
        ctx.emit(
            "no.ema.case.settlement-planned.v1",
            m.CaseSettlementPlannedV1(
                case_id=offer.case_id,
                kommunenummer=offer.kommunenummer,
                settle_on=data.settle_on,
                measure=data.measure,
            ),
            case_id=offer.case_id,
        )
        # The municipality's case opens from the handover, not from typing it in again.
        await start_handover(
            ctx, deps.rules, offer, child, data.settle_on, data.measure, recipients
        )
        if data.settle_on <= today():
            await ctx.session.execute(
                update(Child).where(Child.case_id == offer.case_id).values(status="settled")
            )
            move_in(
                ctx.session,
                ctx.outbox,
                offer.case_id,
                offer.kommunenummer,
                data.settle_on,
                data.measure,
            )
            await moved_in(ctx.session, ctx.outbox, offer.case_id, data.settle_on)
        when = data.settle_on.strftime("%d.%m.%Y")
        answer(
            ctx,
            offer,
            "settled",
            f"Aksepten er registrert; barnet bosettes hos dere og flytter inn {when}.",
            f"The acceptance is recorded; the child is settled with you and moves in on "
            f"{data.settle_on.isoformat()}.",
        )
        log.info(
            "child settled",
            extra={
                "offer": offer.offer_id,
                "case": offer.case_id,
                "kommunenummer": offer.kommunenummer,
            },
        )

    async def refund_claimed(ctx: Context) -> None:
        data: m.RefundClaimedV1 = ctx.data
        _own_municipality(ctx, data.kommunenummer)
        if await ctx.session.get(RefundClaim, data.claim_id):
            raise Rejected("claim_id: a claim with this id exists; use a new id")
        if data.period_to < data.period_from:
            raise Rejected("period_to: the period ends before it starts")
        placement = await ctx.session.get(Placement, data.case_id)
        child = await ctx.session.get(Child, data.case_id)
        reason = None
        if placement is None or placement.kommunenummer != data.kommunenummer or child is None:
            reason = "case_id: the child is not settled in this municipality"
        elif data.period_from < placement.settled_on:
            reason = "period_from: the period starts before the child was settled here"
        elif data.period_to > today():
            reason = "period_to: the period has not ended yet"
        else:
            overlap = await ctx.session.scalar(
                select(RefundClaim.claim_id).where(
                    RefundClaim.case_id == data.case_id,
                    RefundClaim.outcome != "refused",
                    RefundClaim.period_from <= data.period_to,
                    RefundClaim.period_to >= data.period_from,
                )
            )
            if overlap:
                reason = "period_from: the period overlaps a period already refunded"
        days = (data.period_to - data.period_from).days + 1
        if reason is None:
            assert child is not None and child.birth_date is not None
            d = domain.decide_refund(
                child.birth_date,
                data.period_from,
                data.period_to,
                data.expenses_nok,
                deps.refund_rules,
            )
        else:
            d = domain.RefundDecision("refused", domain.Decimal("0.00"), days, 0, reason)
        ctx.session.add(
            RefundClaim(
                claim_id=data.claim_id,
                case_id=data.case_id,
                kommunenummer=data.kommunenummer,
                period_from=data.period_from,
                period_to=data.period_to,
                expenses_nok=data.expenses_nok,
                outcome=d.outcome,
                refund_nok=d.refund_nok,
                days_claimed=d.days_claimed,
                days_refundable=d.days_refundable,
                reason=d.reason,
            )
        )
        ctx.emit(
            "no.ema.municipality.refund-decided.v1",
            m.RefundDecidedV1(
                claim_id=data.claim_id,
                case_id=data.case_id,
                outcome=d.outcome,
                refund_nok=d.refund_nok,
                days_claimed=d.days_claimed,
                days_refundable=d.days_refundable,
                reason=d.reason,
            ),
            case_id=data.case_id,
            unit=unit_of(data.kommunenummer),
        )
        log.info("refund decided", extra={"claim": data.claim_id, "outcome": d.outcome})

    return {
        "no.ema.municipality.capacity.v1": capacity_v1,
        "no.ema.municipality.capacity.v2": capacity_v2,
        "no.ema.case.residence-decided.v2": residence,
        "no.ema.case.closed.v1": closed,
        "no.ema.municipality.settlement-profile.v1": profile,
        "no.ema.municipality.offer-requested.v1": offer_requested,
        "no.ema.municipality.offer-answered.v1": offer_answered,
        "no.ema.municipality.offer-answered.v2": offer_answered,
        "no.ema.municipality.refund-claimed.v1": refund_claimed,
    }


def move_in(session, outbox, case_id: str, kommunenummer: str, on: date, measure: str) -> None:  # noqa: ANN001
    """The child moves in: the centre stay ends (planning closes it on case.settled)."""
    outbox.add(
        session,
        "no.ema.case.settled.v1",
        m.CaseSettledV1(
            case_id=case_id, kommunenummer=kommunenummer, settled_on=on, measure=measure
        ),
        case_id=case_id,
    )


async def move_in_due(sessions, outbox, write_lock, day: date) -> int:  # noqa: ANN001
    """Children whose agreed move-in day has come: settled once (conditional update)."""
    async with write_lock, sessions() as session, session.begin():
        due = (
            await session.scalars(
                select(Child).where(Child.status == "accepted", Child.settled_on <= day)
            )
        ).all()
        moved = 0
        for child in due:
            took = await session.execute(
                update(Child)
                .where(Child.case_id == child.case_id, Child.status == "accepted")
                .values(status="settled")
            )
            placement = await session.get(Placement, child.case_id)
            if took.rowcount != 1 or placement is None:
                continue
            move_in(
                session,
                outbox,
                child.case_id,
                placement.kommunenummer,
                placement.settled_on,
                placement.measure,
            )
            await moved_in(session, outbox, child.case_id, placement.settled_on)
            moved += 1
    return moved


async def escalate_due(sessions, outbox, write_lock, now: datetime) -> int:  # noqa: ANN001
    """Offers past their answer time without an answer: escalate each once."""
    async with write_lock, sessions() as session, session.begin():
        due = (
            await session.scalars(
                select(Offer).where(
                    Offer.status == "pending", Offer.escalated.is_(False), Offer.answer_by <= now
                )
            )
        ).all()
        for offer in due:
            offer.escalated = True
            outbox.add(
                session,
                "no.ema.municipality.offer-escalated.v1",
                m.OfferEscalatedV1(
                    offer_id=offer.offer_id,
                    case_id=offer.case_id,
                    kommunenummer=offer.kommunenummer,
                    bufetat_region=offer.bufetat_region,
                    answer_by=offer.answer_by,
                ),
                case_id=offer.case_id,
            )
    return len(due)


def new_id() -> str:
    return uuid.uuid4().hex
