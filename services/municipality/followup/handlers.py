"""The follow-up after settlement: the handover at the acceptance, the municipality's case
that opens from it, measures and their changes, aftercare, NAV, closure, referrals and the
coordinating service. Planning keeps the deadlines (follow-up-reached); this service checks
who says what and keeps the state (docs/decisions/0015)."""

from __future__ import annotations

import json
import logging
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import messages as m
from services.kit.clock import today
from services.kit.outbox import Outbox
from services.kit.sealing import SUITE_SETTINGS, request_context, seal
from services.kit.service import Context, HandlerFunc, NotYet, Rejected
from services.municipality.domain import Catalogue, age_on
from services.municipality.followup import domain as d
from services.municipality.store import (
    Access,
    Child,
    ChildService,
    FollowUp,
    HandoverPart,
    MeasureRecord,
    Offer,
    Referral,
    ShareOutcome,
    child_row,
)

log = logging.getLogger("municipality.followup")
CONSENT_UNIT = "svc-consent"
FOLLOW_UP_TYPES = ("handover", "referral", "referral_feedback")


def reach(
    session: AsyncSession,
    outbox: Outbox,
    case_id: str,
    milestone: str,
    on: date,
    roles: dict[str, str] | None = None,
    pathway: str = d.PATHWAY,
    instance: str | None = None,
) -> None:
    """Tell planning a follow-up (or referral) milestone, with the units holding roles."""
    outbox.add(
        session,
        "no.ema.municipality.follow-up-reached.v1",
        m.FollowUpReachedV1(
            case_id=case_id,
            pathway=pathway,
            instance=instance,
            milestone=milestone,
            on=on,
            roles=[m.RoleUnit(role=r, unit=u) for r, u in (roles or {}).items()],
        ),
        case_id=case_id,
    )


def grant_access(
    session: AsyncSession,
    outbox: Outbox,
    fu: FollowUp,
    unit: str,
    reason: str,
    on: date,
    existing: Access | None = None,
) -> None:
    """A unit may see the child's case from `on`, and hears so with the residence status that
    follows the case (seed 003 L882-884: nothing is lost in a move)."""
    if existing is None:
        session.add(Access(case_id=fu.case_id, unit=unit, reason=reason, from_on=on, until=None))
    else:
        existing.from_on, existing.until = min(existing.from_on, on), None
    outbox.add(
        session,
        "no.ema.municipality.case-access.v1",
        m.CaseAccessV1(
            case_id=fu.case_id,
            case_ref=fu.case_ref,
            kommunenummer=fu.kommunenummer,
            access="granted",
            reason=reason,
            measure=fu.measure,
            from_on=on,
            residence=fu.residence,
            residence_decided_on=fu.residence_decided_on,
        ),
        case_id=fu.case_id,
        unit=unit,
    )


async def add_service(
    session: AsyncSession, outbox: Outbox, fu: FollowUp, service: str, unit: str, on: date
) -> None:
    """The child receives one more service; at two or more a coordinating service is due
    (once the child lives in the municipality)."""
    if await session.get(ChildService, (fu.case_id, service, unit)) is None:
        session.add(ChildService(case_id=fu.case_id, service=service, unit=unit, since=on))
        await session.flush()
    await coordination_check(session, outbox, fu, on)


async def coordination_check(session: AsyncSession, outbox: Outbox, fu: FollowUp, on: date) -> None:
    if fu.coordination_needed or fu.status != "active":
        return
    count = await session.scalar(
        select(func.count(func.distinct(ChildService.service))).where(
            ChildService.case_id == fu.case_id
        )
    )
    if (count or 0) >= 2:
        fu.coordination_needed = True
        reach(session, outbox, fu.case_id, "coordination_needed", on)


async def start_handover(
    ctx: Context,
    rules: d.Rules,
    offer: Offer,
    child: Child,
    settle_on: date,
    measure: str,
    recipients: m.HandoverRecipients | None,
) -> None:
    """The acceptance opens the municipality's case from what the centre and Bufetat hold,
    and hands each part over through the broker on its own basis (issue 15)."""
    if await ctx.session.get(FollowUp, child.case_id) is not None:
        return
    municipality = f"kommune-{offer.kommunenummer}"
    # v1 acceptances name no units: every part goes to the municipality's own unit.
    units = {
        "barnevern": recipients.barnevern if recipients else municipality,
        "school": recipients.school if recipients else municipality,
        "health_station": recipients.health_station if recipients else municipality,
    }
    fu = FollowUp(
        case_id=child.case_id,
        case_ref=child.case_ref or "",
        kommunenummer=offer.kommunenummer,
        municipality_unit=municipality,
        barnevern_unit=units["barnevern"],
        settle_on=settle_on,
        status="planned",
        residence=child.residence,
        residence_decided_on=child.residence_decided_on,
        birth_date=child.birth_date,
        birth_date_estimated=bool(child.birth_date_estimated),
        measure=measure,
        coordination_needed=False,
    )
    ctx.session.add(fu)
    grant_access(ctx.session, ctx.outbox, fu, municipality, "municipality", today())
    if units["barnevern"] != municipality:
        grant_access(ctx.session, ctx.outbox, fu, units["barnevern"], "barnevern", today())
    if recipients:
        for service, unit in units.items():
            ctx.session.add(
                ChildService(case_id=fu.case_id, service=service, unit=unit, since=settle_on)
            )
    suite = SUITE_SETTINGS[ctx.settings.sealing_suite]
    broker = await ctx.directory.get(CONSENT_UNIT)
    broker_key = broker.sealing_for(suite) if broker else None
    if broker_key is None:
        raise NotYet("the consent broker's sealing key is not published yet")
    by = d.acknowledge_by(settle_on)
    age = age_on(child.birth_date, today()) if child.birth_date else None
    contents = {
        "kopp_summary": d.kopp_summary(
            child.measure,
            child.care_needs,
            child.family,
            child.network,
            child.siblings,
            offer.kommunenummer,
        ),
        "residence_status": d.residence_summary(
            child.residence, child.residence_decided_on, child.languages, age
        ),
    }
    for part in rules.parts:
        request_id = d.handover_request_id(child.case_id, part.part)
        recipient = units[part.recipient]
        source = child.profile_from if part.sent_by == "bufetat_region" else child.care_centre
        if not source:
            log.warning(
                "handover part has no known sender",
                extra={"case": child.case_id, "part": part.part},
            )
            continue
        ctx.session.add(
            HandoverPart(
                request_id=request_id,
                case_id=child.case_id,
                part=part.part,
                data_category=part.category,
                source_unit=source,
                recipient_unit=recipient,
                acknowledge_by=by,
                status="requested",
            )
        )
        if part.part in contents:  # held by emaflyt: sent for the Bufetat region (ADR 0011)
            info = request_context(
                child.case_id, request_id, source, recipient, part.category, rules.purpose
            )
            sealed = seal(
                json.dumps(contents[part.part]).encode(), suite, broker_key.public_key, info
            )
            ctx.emit(
                "no.ema.share.request.v2",
                m.ShareRequestV2(
                    request_id=request_id,
                    case_id=child.case_id,
                    source_unit=source,
                    recipient_unit=recipient,
                    data_category=part.category,
                    purpose=rules.purpose,
                    payload=sealed,
                ),
                case_id=child.case_id,
            )
        roles = [("receive", recipient)] + (
            [("send", source)] if part.sent_by == "care_centre" else []
        )
        for role, unit in roles:
            ctx.emit(
                "no.ema.municipality.handover-notice.v1",
                m.HandoverNoticeV1(
                    case_id=child.case_id,
                    case_ref=child.case_ref or "",
                    kommunenummer=offer.kommunenummer,
                    part=part.part,
                    request_id=request_id,
                    data_category=part.category,
                    purpose=rules.purpose,
                    source_unit=source,
                    recipient_unit=recipient,
                    your_role=role,
                    settle_on=settle_on,
                    acknowledge_by=by,
                ),
                case_id=child.case_id,
                unit=unit,
            )
    roles = {"municipality": municipality} | {
        d.RECIPIENT_ROLES[service]: unit for service, unit in units.items()
    }
    reach(ctx.session, ctx.outbox, child.case_id, "move_in_planned", settle_on, roles)
    log.info("handover started", extra={"case": child.case_id, "parts": len(rules.parts)})


async def moved_in(session: AsyncSession, outbox: Outbox, case_id: str, on: date) -> None:
    """The child moved in: the municipality follows the child from today."""
    fu = await session.get(FollowUp, case_id)
    if fu is None or fu.status != "planned":
        return
    fu.status = "active"
    reach(session, outbox, case_id, "moved_in", on)
    await session.flush()
    await coordination_check(session, outbox, fu, on)


def make_followup_handlers(rules: d.Rules, catalogue: Catalogue) -> dict[str, HandlerFunc]:
    def not_future(day: date, field: str) -> None:
        if day > today():
            raise Rejected(f"{field}: {day} lies in the future")

    async def followup_of(ctx: Context, case_id: str, open_: bool = True) -> FollowUp:
        fu = await ctx.session.get(FollowUp, case_id)
        if fu is None:
            raise Rejected("case_id: the child is not settled in a municipality (no follow-up)")
        if open_ and fu.status == "closed":
            raise Rejected(f"case_id: the follow-up of case {fu.case_ref} is closed")
        return fu

    def child_welfare(ctx: Context, fu: FollowUp) -> None:
        """Barnevern of the child's municipality (or the municipality itself) speaks here."""
        if ctx.sender.id not in (fu.barnevern_unit, fu.municipality_unit):
            raise Rejected(
                f"source: {ctx.sender.id!r} is not the child-welfare service or "
                f"the municipality of case {fu.case_ref}"
            )

    async def case_opened(ctx: Context) -> None:
        data: m.CaseOpenedV2 = ctx.data
        # Without flushing the batch's earlier rows (they go in with the commit, one statement
        # per table); a child added twice in one batch fails that commit on its key and the
        # batch is applied one message at a time.
        with ctx.session.sync_session.no_autoflush:
            child = await child_row(ctx.session, data.case_id)
        child.case_ref = child.case_ref or data.case_ref
        child.care_centre = data.care_centre
        child.birth_date = child.birth_date or data.birth_date
        child.birth_date_estimated = data.birth_date_estimated

    async def transferred(ctx: Context) -> None:
        data: m.CaseTransferredV1 = ctx.data
        child = await ctx.session.get(Child, data.case_id)
        if child is not None:
            child.care_centre = data.to_centre

    async def share_decided(ctx: Context) -> None:
        """The broker's decision on a handover part or a referral's content or feedback."""
        data: m.ShareDecidedV1 = ctx.data
        if data.purpose not in FOLLOW_UP_TYPES and not data.request_id.startswith("handover-"):
            return
        outcome = "released" if data.outcome == "allow" else "withheld"
        part = await ctx.session.get(HandoverPart, data.request_id)
        if part is not None:
            if part.status == "requested":
                part.status, part.legal_basis = outcome, data.legal_basis
                if outcome == "withheld":  # nothing reached the recipient: nothing to confirm
                    reach(
                        ctx.session,
                        ctx.outbox,
                        part.case_id,
                        f"{part.part}_withheld",
                        min(ctx.event.time.date(), today()),
                    )
            return
        referral = await ctx.session.scalar(
            select(Referral).where(
                (Referral.share_request_id == data.request_id)
                | (Referral.feedback_request_id == data.request_id)
            )
        )
        if referral is None:
            if await ctx.session.get(ShareOutcome, data.request_id) is None:
                ctx.session.add(
                    ShareOutcome(
                        request_id=data.request_id, outcome=outcome, legal_basis=data.legal_basis
                    )
                )
            return
        if referral.share_request_id == data.request_id:
            referral.content_outcome = outcome
        else:
            referral.feedback_outcome = outcome

    async def outcome_of(ctx: Context, request_id: str) -> str | None:
        found = await ctx.session.get(ShareOutcome, request_id)
        return found.outcome if found else None

    async def handover_acknowledged(ctx: Context) -> None:
        data: m.HandoverAcknowledgedV1 = ctx.data
        part = await ctx.session.get(HandoverPart, data.request_id)
        if part is None or part.case_id != data.case_id:
            raise Rejected("request_id: no handover part of this case has this request id")
        if ctx.sender.id != part.recipient_unit:
            raise Rejected(f"source: the part is addressed to {part.recipient_unit!r}")
        not_future(data.acknowledged_on, "acknowledged_on")
        if part.status == "acknowledged":
            return
        if part.status == "requested":
            raise NotYet(f"request_id: the broker has not decided part {part.part} yet")
        if part.status == "withheld":
            raise Rejected(f"request_id: part {part.part} was withheld; nothing to acknowledge")
        part.status, part.acknowledged_on = "acknowledged", data.acknowledged_on
        reach(
            ctx.session, ctx.outbox, part.case_id, f"{part.part}_acknowledged", data.acknowledged_on
        )
        log.info("handover part acknowledged", extra={"case": part.case_id, "part": part.part})

    async def measure_decided(ctx: Context) -> None:
        """A measure is decided, or changed: the residence status stays on the case and the
        new measure's unit gets access the same day; the old one keeps it for the overlap."""
        data: m.MeasureDecidedV1 = ctx.data
        fu = await followup_of(ctx, data.case_id)
        child_welfare(ctx, fu)
        not_future(data.decided_on, "decided_on")
        if data.measure not in catalogue.measures:
            raise Rejected("measure: not a measure in measures.json")
        first = fu.measure_decided_on is None
        if not first and (data.measure, data.provider_unit) == (fu.measure, fu.provider_unit):
            return
        previous = fu.provider_unit
        ctx.session.add(
            MeasureRecord(
                case_id=fu.case_id,
                measure=data.measure,
                provider_unit=data.provider_unit,
                decided_on=data.decided_on,
                decision_ref=data.decision_ref,
                legal_basis=data.legal_basis,
            )
        )
        fu.measure, fu.provider_unit, fu.measure_decided_on = (
            data.measure,
            data.provider_unit,
            data.decided_on,
        )
        held = await ctx.session.get(Access, (fu.case_id, data.provider_unit, "measure"))
        grant_access(
            ctx.session, ctx.outbox, fu, data.provider_unit, "measure", data.decided_on, held
        )
        if previous and previous != data.provider_unit:
            old = await ctx.session.get(Access, (fu.case_id, previous, "measure"))
            if old is not None:
                old.until = d.access_until(data.decided_on, rules.access_overlap_days)
                ctx.emit(
                    "no.ema.municipality.case-access.v1",
                    m.CaseAccessV1(
                        case_id=fu.case_id,
                        case_ref=fu.case_ref,
                        kommunenummer=fu.kommunenummer,
                        access="ends",
                        reason="measure",
                        measure=fu.measure,
                        from_on=old.from_on,
                        until=old.until,
                        residence=fu.residence,
                        residence_decided_on=fu.residence_decided_on,
                    ),
                    case_id=fu.case_id,
                    unit=previous,
                )
        milestone = "measure_decided" if first else "measure_changed"
        reach(ctx.session, ctx.outbox, fu.case_id, milestone, data.decided_on)
        log.info("measure recorded", extra={"case": fu.case_id, "change": not first})

    async def follow_up_reported(ctx: Context) -> None:
        data: m.FollowUpReportedV1 = ctx.data
        fu = await followup_of(ctx, data.case_id)
        child_welfare(ctx, fu)
        not_future(data.on, "on")
        if data.event == "nav_took_over":
            fu.nav_on = data.on
        else:
            fu.aftercare = data.event.removeprefix("aftercare_")
        reach(ctx.session, ctx.outbox, fu.case_id, d.REPORTED[data.event], data.on)

    async def follow_up_closed(ctx: Context) -> None:
        data: m.FollowUpClosedV1 = ctx.data
        fu = await followup_of(ctx, data.case_id)
        child_welfare(ctx, fu)
        not_future(data.closed_on, "closed_on")
        fu.status, fu.closed_on = "closed", data.closed_on
        fu.outcome, fu.day_activity = data.outcome, data.day_activity
        reach(ctx.session, ctx.outbox, fu.case_id, "terminated", data.closed_on)
        log.info("follow-up closed", extra={"case": fu.case_id, "outcome": data.outcome})

    async def coordinator_assigned(ctx: Context) -> None:
        data: m.CoordinatorAssignedV1 = ctx.data
        fu = await followup_of(ctx, data.case_id)
        if ctx.sender.id != fu.municipality_unit:
            raise Rejected(
                f"source: only the municipality {fu.municipality_unit!r} names "
                "the coordinating service"
            )
        not_future(data.assigned_on, "assigned_on")
        unit = await ctx.directory.get(data.coordinator_unit)
        if unit is None or unit.kind.value != rules.services[data.service]:
            raise Rejected(f"coordinator_unit: not a registered {data.service} unit")
        fu.coordinator_unit, fu.coordinator_service = data.coordinator_unit, data.service
        held = await ctx.session.get(Access, (fu.case_id, data.coordinator_unit, "coordinator"))
        grant_access(
            ctx.session,
            ctx.outbox,
            fu,
            data.coordinator_unit,
            "coordinator",
            data.assigned_on,
            held,
        )
        reach(
            ctx.session,
            ctx.outbox,
            fu.case_id,
            "coordinator_assigned",
            data.assigned_on,
            {"coordinator": data.coordinator_unit},
        )

    def notice(ctx: Context, r: Referral, status: str, on: date, unit: str, ref: str) -> None:
        ctx.emit(
            "no.ema.municipality.referral-notice.v1",
            m.ReferralNoticeV1(
                referral_id=r.referral_id,
                case_id=r.case_id,
                case_ref=ref,
                from_service=r.from_service,
                to_service=r.to_service,
                from_unit=r.from_unit,
                to_unit=r.to_unit,
                status=status,
                on=on,
                feedback_consent=r.feedback_consent,
            ),
            case_id=r.case_id,
            unit=unit,
        )

    async def referral_sent(ctx: Context) -> None:
        data: m.ReferralSentV1 = ctx.data
        if await ctx.session.get(Referral, data.referral_id) is not None:
            raise Rejected("referral_id: a referral with this id exists; use a new id")
        fu = await followup_of(ctx, data.case_id)
        not_future(data.sent_on, "sent_on")
        if data.from_service == data.to_service:
            raise Rejected("to_service: a service does not refer to itself")
        if ctx.sender.kind.value != rules.services[data.from_service]:
            raise Rejected(
                f"from_service: a {ctx.sender.kind.value} unit is not a {data.from_service} service"
            )
        to = await ctx.directory.get(data.to_unit)
        if to is None or to.kind.value != rules.services[data.to_service]:
            raise Rejected(f"to_unit: not a registered {data.to_service} unit")
        if data.feedback_consent == "given" and not data.feedback_consent_id:
            raise Rejected(
                "feedback_consent_id: name the consent to feedback registered with the broker"
            )
        pathway = rules.referral_pathway(data.to_service)
        r = Referral(
            referral_id=data.referral_id,
            case_id=fu.case_id,
            from_service=data.from_service,
            from_unit=ctx.sender.id,
            to_service=data.to_service,
            to_unit=data.to_unit,
            pathway=pathway,
            share_request_id=data.share_request_id,
            sent_on=data.sent_on,
            feedback_consent=data.feedback_consent,
            feedback_consent_id=data.feedback_consent_id,
            content_outcome=await outcome_of(ctx, data.share_request_id),
            status="sent",
        )
        ctx.session.add(r)
        roles = {"referring_service": ctx.sender.id, "receiving_service": data.to_unit}
        reach(
            ctx.session,
            ctx.outbox,
            fu.case_id,
            "sent",
            data.sent_on,
            roles,
            pathway,
            data.referral_id,
        )
        notice(ctx, r, "sent", data.sent_on, data.to_unit, fu.case_ref)
        await add_service(
            ctx.session, ctx.outbox, fu, data.from_service, ctx.sender.id, data.sent_on
        )
        log.info(
            "referral sent",
            extra={"referral": r.referral_id, "route": f"{r.from_service}->{r.to_service}"},
        )

    async def referral_of(ctx: Context, referral_id: str) -> tuple[Referral, FollowUp]:
        r = await ctx.session.get(Referral, referral_id)
        if r is None:
            raise NotYet(f"referral_id: no referral {referral_id!r} is known yet")
        if ctx.sender.id != r.to_unit:
            raise Rejected(f"source: the referral was sent to {r.to_unit!r}")
        return r, await followup_of(ctx, r.case_id, open_=False)

    async def acknowledge(ctx: Context, r: Referral, fu: FollowUp, on: date) -> None:
        r.status, r.acknowledged_on = "acknowledged", on
        reach(
            ctx.session, ctx.outbox, r.case_id, "acknowledged", on, None, r.pathway, r.referral_id
        )
        notice(ctx, r, "acknowledged", on, r.from_unit, fu.case_ref)
        await add_service(ctx.session, ctx.outbox, fu, r.to_service, r.to_unit, on)

    async def referral_acknowledged(ctx: Context) -> None:
        data: m.ReferralAcknowledgedV1 = ctx.data
        r, fu = await referral_of(ctx, data.referral_id)
        not_future(data.acknowledged_on, "acknowledged_on")
        if r.status == "sent":
            await acknowledge(ctx, r, fu, data.acknowledged_on)

    async def referral_feedback(ctx: Context) -> None:
        """Feedback given: the broker releases it on the consent captured at the referral,
        or a statute (barnevern to a public reporter), or withholds it."""
        data: m.ReferralFeedbackV1 = ctx.data
        r, fu = await referral_of(ctx, data.referral_id)
        not_future(data.given_on, "given_on")
        if r.status == "feedback_given":
            return
        if r.status == "sent":  # feedback is an acknowledgement too
            await acknowledge(ctx, r, fu, data.given_on)
        r.status, r.feedback_on = "feedback_given", data.given_on
        r.feedback_request_id = data.share_request_id
        r.feedback_outcome = await outcome_of(ctx, data.share_request_id)
        reach(
            ctx.session,
            ctx.outbox,
            r.case_id,
            "feedback_given",
            data.given_on,
            None,
            r.pathway,
            r.referral_id,
        )
        notice(ctx, r, "feedback_given", data.given_on, r.from_unit, fu.case_ref)

    return {
        "no.ema.case.opened.v2": case_opened,
        "no.ema.case.transferred.v1": transferred,
        "no.ema.share.decided.v1": share_decided,
        "no.ema.municipality.handover-acknowledged.v1": handover_acknowledged,
        "no.ema.municipality.measure-decided.v1": measure_decided,
        "no.ema.municipality.follow-up-reported.v1": follow_up_reported,
        "no.ema.municipality.follow-up-closed.v1": follow_up_closed,
        "no.ema.municipality.coordinator-assigned.v1": coordinator_assigned,
        "no.ema.municipality.referral-sent.v1": referral_sent,
        "no.ema.municipality.referral-acknowledged.v1": referral_acknowledged,
        "no.ema.municipality.referral-feedback.v1": referral_feedback,
    }
