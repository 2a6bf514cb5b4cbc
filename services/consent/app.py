"""Wiring for the consent broker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from services.consent import fhir, glass, handlers, witnesses
from services.consent.audit import store as _audit_tables  # noqa: F401 (creates the tables)
from services.consent.audit.queries import consent_history, decision_dict
from services.consent.audit.store import AuditView
from services.consent.audit.web import Audit
from services.consent.engine import SelectedEngine, legal_data
from services.consent.log import DEFAULT_ORIGIN, DecisionLog, key_paths
from services.consent.store import Base, ConsentRow, DecisionRecord
from services.kit import api_auth
from services.kit.sealing import HYBRID, SUITE_SETTINGS, X25519, SealingKey, x25519_legacy_private
from services.kit.service import Service, route
from services.kit.settings import Settings


class ConsentSettings(Settings):
    policy_engine: Literal["opa-go", "regopy", "opa"] = Field(
        "opa-go",
        description="opa-go (OPA's Go evaluator in process, the default), regopy (rego-cpp in "
        "process) or opa (an OPA server at opa_url). Whichever it is, a policy that cannot be "
        "loaded or evaluated means withhold (docs/decisions/0012, 0019).",
    )
    opa_url: str | None = Field(None, description="OPA server, e.g. http://opa:8181.")
    audit_session_hours: int = Field(8, ge=1, le=24, description="Audit page sign-in lifetime.")
    audit_cookie_secure: bool = Field(False, description="Secure cookies (behind HTTPS).")
    oidc_issuer: str | None = Field(None, description="OpenID Connect issuer for /audit sign-in.")
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_uri: str | None = Field(
        None, description="Default: <this host>/audit/oidc/callback."
    )
    oidc_username_claim: str = Field(
        "preferred_username",
        description="Names an OIDC account at its first sign-in; after "
        "that the account is bound to the token's issuer and subject.",
    )
    audit_throttle_after: int = Field(
        5, ge=1, description="Failed sign-ins per account before each further one doubles the wait."
    )
    audit_throttle_after_address: int = Field(20, ge=1, description="The same per address.")
    audit_throttle_base: float = Field(1.0, gt=0, description="First wait, seconds.")
    audit_throttle_max: float = Field(900.0, gt=0, description="Longest wait, seconds.")
    audit_throttle_window: float = Field(
        3600.0, gt=0, description="Failures older than this many seconds no longer count."
    )
    log_origin: str = Field(
        DEFAULT_ORIGIN,
        description="The decision log's checkpoint origin "
        "and key name; unique per log, e.g. <domain>/consent-log.",
    )
    log_key_file: Path | None = Field(
        None,
        description="The log's Ed25519 signing key (PEM), readable only by the service; "
        "default <data>/keys/consent-log.pem. Made on first start.",
    )
    log_keys_file: Path | None = Field(
        None,
        description="The log's public keys by key id, every one since the first "
        "(vkeys); default <data>/keys/consent-log.vkeys. Verifiers read only this.",
    )
    glass_recipient_kinds: str = Field(
        "health,barnevern", description="Unit kinds that can act in an emergency (comma list)."
    )
    glass_limit: int = Field(
        3, ge=0, description="Break-the-glass releases per source unit in glass_window_hours."
    )
    glass_window_hours: int = Field(24, ge=1)
    glass_check_interval: float = Field(
        60.0, gt=0, description="Seconds between checks for overdue break-the-glass reviews."
    )
    privacy_officer_unit: str = Field(
        "privacy-office", description="Unit whose privacy_officer role hears overdue reviews."
    )
    witness_keys_file: Path | None = Field(
        None,
        description="Witnesses the audit pages ask (cosigner vkeys); default: every unit of "
        "kind witness in the unit directory.",
    )


service = Service("consent", Base.metadata, ConsentSettings, migrate=True)
engine = SelectedEngine()
decision_log = DecisionLog()
service.state["log"] = decision_log
service.handles(
    "no.ema.case.opened.v2",
    "no.ema.case.representative.v1",
    "no.ema.case.transferred.v1",
    durable="consent-cases",
)(
    route(
        {
            "no.ema.case.opened.v2": handlers.on_case_opened,
            "no.ema.case.representative.v1": handlers.on_case_changed,
            "no.ema.case.transferred.v1": handlers.on_case_changed,
        }
    )
)
service.handles("no.ema.share.request.v1", "no.ema.share.request.v2", durable="consent-requests")(
    route(
        {
            "no.ema.share.request.v1": handlers.on_share_request_v1,
            "no.ema.share.request.v2": handlers.make_share_request_handler(
                engine, service.state, decision_log
            ),
        }
    )
)
service.handles(
    "no.ema.consent.granted.v1", "no.ema.consent.withdrawn.v1", durable="consent-consents"
)(handlers.make_consent_handler(legal_data(), decision_log))


service.handles(
    "no.ema.log.cosigned.v1", "no.ema.log.witness-alarm.v1", durable="consent-witnesses"
)(witnesses.on_witness_message)


async def load_log_key(svc: Service) -> None:
    s = svc.settings
    key_file, keys_file = key_paths(s.data_dir, s.log_key_file, s.log_keys_file)  # type: ignore[attr-defined]
    decision_log.start(s.log_origin, key_file, keys_file)  # type: ignore[attr-defined]


async def answer_witnesses(svc: Service) -> None:
    """Consistency proofs for witnesses that missed checkpoints (one replica answers)."""
    from contracts.registry import LOG_CONSISTENCY

    responder = witnesses.consistency_responder(svc.sessions, svc.settings.log_origin)  # type: ignore[attr-defined]
    await svc.nc.subscribe(LOG_CONSISTENCY, queue="consent", cb=responder)


async def choose_engine(svc: Service) -> None:
    from prometheus_client import Histogram

    await engine.configure(svc.settings.policy_engine, svc.settings.opa_url)  # type: ignore[attr-defined]
    engine.latency = Histogram(
        "ema_decision_seconds",
        "Policy evaluation time per decision.",
        registry=svc.metrics.registry,
    )
    svc.state["policy_engine"] = engine.name


async def publish_sealing_keys(svc: Service) -> None:
    """The broker's sealing keys, one per HPKE suite, made on first start and published in
    the unit directory so senders can seal payloads to the broker."""
    settings = svc.settings
    assert settings.key_file is not None and settings.unit_id is not None
    keys = settings.key_file.parent
    legacy = x25519_legacy_private(keys / f"{settings.unit_id}.x25519.pem")
    x25519_path = keys / f"{settings.unit_id}.sealing-x25519.json"
    if legacy is not None and not x25519_path.exists():  # keep the key partners know
        SealingKey(X25519, legacy).save(x25519_path)
    own = [
        SealingKey.load_or_create(x25519_path, X25519),
        SealingKey.load_or_create(keys / f"{settings.unit_id}.sealing-mlkem768x25519.json", HYBRID),
    ]
    unit = await svc.directory.get(settings.unit_id)
    assert unit is not None
    before = unit.model_dump()
    for key in own:
        unit.add_sealing_key(key.suite, key.public_b64)
    if unit.model_dump() != before:
        await svc.directory.put(unit)
    svc.state["sealing_keys"] = own
    svc.state["sealing_suite"] = SUITE_SETTINGS[settings.sealing_suite]
    if engine.error:
        svc.state["policy_error"] = engine.error


async def decisions(request: web.Request) -> web.Response:
    """GET /cases/{case_id}/decisions: decision records of a case (no payload values)."""
    async with service.sessions() as session:
        rows = (
            await session.scalars(
                select(DecisionRecord)
                .where(DecisionRecord.case_id == request.match_info["case_id"])
                .order_by(DecisionRecord.seq)
            )
        ).all()
    return web.json_response([decision_dict(r) for r in rows])


async def consent_views(case_id: str) -> list[dict[str, Any]]:
    """The case's consents from their latest grant and withdrawal records in the log."""
    async with service.sessions() as session:
        rows = (
            await session.scalars(
                select(ConsentRow)
                .where(ConsentRow.case_id == case_id)
                .order_by(ConsentRow.consent_id)
            )
        ).all()
        history = await consent_history(session, case_id)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in history:  # in log order: the last one of each kind counts
        latest[(entry["consent_id"], entry["kind"])] = entry
    now = datetime.now(UTC)
    return [
        fhir.consent_view(
            row.status,
            latest[(row.consent_id, "consent.granted")],
            latest.get((row.consent_id, "consent.withdrawn"))
            if row.status == "withdrawn"
            else None,
            now,
        )
        for row in rows
        if (row.consent_id, "consent.granted") in latest
    ]


async def consents(request: web.Request) -> web.Response:
    """GET /cases/{case_id}/consents: the case's consents (no names), newest version each."""
    return web.json_response(await consent_views(request.match_info["case_id"]))


async def consents_fhir(request: web.Request) -> web.Response:
    """GET /cases/{case_id}/consents/fhir: the same as FHIR R4 Consents in a collection."""
    views = await consent_views(request.match_info["case_id"])
    return web.json_response(
        fhir.bundle(views, datetime.now(UTC)), content_type="application/fhir+json"
    )


service.background.append(glass.escalate_overdue)
service.startup.append(load_log_key)
service.startup.append(answer_witnesses)


async def close_engine(_svc: Service) -> None:
    """The OPA client's connections (or OPA's Go evaluator) go with the service."""
    await engine.close()


service.startup.append(choose_engine)
service.shutdown.append(close_engine)
service.startup.append(publish_sealing_keys)


async def record_view(request: web.Request, who: api_auth.Principal | None, allowed: bool) -> None:
    """Views of decisions and consents are recorded like the audit pages' (refusals too)."""
    async with service.sessions() as session, session.begin():
        session.add(
            AuditView(
                username=(who.unit or who.subject) if who else "(no valid token)",
                role=who.role if who else "-",
                method=request.method,
                path=request.path[:512],
                query=request.query_string[:2000],
                allowed=allowed,
            )
        )


# Decisions and consents: the privacy officer's; an operator runs the system, not the audit.
service.access.update(
    dict.fromkeys(
        (
            "/cases/{case_id}/decisions",
            "/cases/{case_id}/consents",
            "/cases/{case_id}/consents/fhir",
        ),
        api_auth.allow(api_auth.PRIVACY_OFFICER, record=True),
    )
)
service.view_recorder = record_view
service.routes.append(web.get("/cases/{case_id}/decisions", decisions))
service.routes.append(web.get("/cases/{case_id}/consents", consents))
service.routes.append(web.get("/cases/{case_id}/consents/fhir", consents_fhir))
service.routes.extend(Audit(service).routes())
