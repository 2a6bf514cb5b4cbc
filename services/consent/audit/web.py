"""The audit pages under /audit: server-rendered, Designsystemet-styled, bokmål with English.

Only privacy officers see decisions; operators see the log status. Every page view, refused or
not, is recorded in audit_view. Sessions are random tokens (only their hash is stored) in an
HttpOnly, SameSite=Strict cookie; every POST form carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import secrets
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jinja2
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import delete, select

from services.consent import glass, verification
from services.consent.audit import oidc, queries, signin
from services.consent.audit.accounts import check_password, hash_password
from services.consent.audit.i18n import LANGS, basis_plain, category, translator
from services.consent.audit.store import (
    AuditReview,
    AuditSession,
    AuditSignIn,
    AuditUser,
    AuditVerification,
    AuditView,
)
from services.consent.engine import POLICY_DIR, legal_data, policy_files
from services.consent.store import (
    DecisionRecord,
    GlassRelease,
    WitnessAlarm,
    WitnessCosignature,
)

log = logging.getLogger("consent.audit")
HERE = Path(__file__).parent
SESSION_COOKIE = "ema_audit_session"
LOGIN_COOKIE = "ema_audit_login"
LANG_COOKIE = "ema_audit_lang"
OIDC_COOKIE = "ema_audit_oidc"
OFFICER = ("privacy_officer",)
ANYONE = ("privacy_officer", "operator")

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What a signed-in request carries: its user, its session's CSRF token, the checked form.
USER = web.RequestKey("user", AuditUser)
CSRF = web.RequestKey("csrf", str)
FORM = web.RequestKey("form", MultiDictProxy)


def redirect(location: str, status: int = 303) -> web.Response:
    """A redirect to return with cookies set on it (aiohttp wants HTTP exceptions raised)."""
    return web.Response(status=status, headers={"Location": location})


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Audit:
    """The pages, bound to the running consent service (its database, key and settings)."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.legal = legal_data()
        self.oidc: oidc.Client | None = None

    # -- plumbing --------------------------------------------------------------------------

    @property
    def settings(self) -> Any:
        return self.service.settings

    def lang(self, request: web.Request) -> str:
        chosen = request.query.get("lang") or request.cookies.get(LANG_COOKIE) or "nb"
        return chosen if chosen in LANGS else "nb"

    def render(
        self, request: web.Request, name: str, status: int = 200, **ctx: Any
    ) -> web.Response:
        lang = self.lang(request)
        other = "en" if lang == "nb" else "nb"
        query = {**request.query, "lang": other}
        body = templates.get_template(name).render(
            t=translator(lang),
            lang=lang,
            user=request.get(USER),
            csrf=request.get(CSRF, ""),
            path=request.path,
            other_lang_url=f"{request.path}?{urllib.parse.urlencode(query)}",
            category=lambda c: category(c, lang),
            basis_plain=lambda b: basis_plain(b, self.legal, lang),
            **ctx,
        )
        resp = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
        resp.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        if request.query.get("lang") in LANGS:
            resp.set_cookie(
                LANG_COOKIE, lang, path="/audit", samesite="Strict", max_age=365 * 86400
            )
        return resp

    async def _user(self, request: web.Request) -> tuple[AuditUser, AuditSession] | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        async with self.service.sessions() as session:
            row = await session.get(AuditSession, _hash(token))
            if row is None or row.expires_at < datetime.now(UTC):
                return None
            user = await session.get(AuditUser, row.username)
            if user is None or user.disabled:
                return None
            return user, row

    async def _record(self, request: web.Request, user: AuditUser, allowed: bool) -> None:
        async with self.service.sessions() as session, session.begin():
            session.add(
                AuditView(
                    username=user.username,
                    role=user.role,
                    method=request.method,
                    path=request.path[:512],
                    query=request.query_string,
                    allowed=allowed,
                )
            )

    def page(self, roles: tuple[str, ...] = OFFICER) -> Callable[[Handler], Handler]:
        """Sign-in required, role checked, CSRF checked on POST, and the view recorded."""

        def wrap(handler: Handler) -> Handler:
            @functools.wraps(handler)
            async def inner(request: web.Request) -> web.StreamResponse:
                found = await self._user(request)
                if found is None:
                    if request.method == "GET":
                        target = urllib.parse.quote(request.path_qs, safe="")
                        raise web.HTTPSeeOther(f"/audit/login?next={target}")
                    raise web.HTTPForbidden(text="sign in first")
                user, sess = found
                request[USER], request[CSRF] = user, sess.csrf
                allowed = user.role in roles
                await self._record(request, user, allowed)
                if not allowed:
                    return self.render(request, "refused.html", status=403)
                if request.method == "POST":
                    form = await request.post()
                    request[FORM] = form
                    if not hmac.compare_digest(str(form.get("csrf", "")), sess.csrf):
                        return self.render(request, "refused.html", status=403, csrf_failed=True)
                return await handler(request)

            return inner

        return wrap

    # -- sign in and out -------------------------------------------------------------------

    async def login_form(
        self, request: web.Request, failed: bool = False, wait: float = 0.0
    ) -> web.Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        resp = self.render(
            request,
            "login.html",
            status=429 if wait else 401 if failed else 200,
            failed=failed,
            wait=int(wait + 0.999),
            login_csrf=token,
            next=signin.safe_next(request.query.get("next")),
            oidc=bool(getattr(self.settings, "oidc_issuer", None)),
        )
        if wait:
            resp.headers["Retry-After"] = str(int(wait + 0.999))
        resp.set_cookie(
            LOGIN_COOKIE,
            token,
            path="/audit",
            httponly=True,
            samesite="Strict",
            secure=self.settings.audit_cookie_secure,
        )
        return resp

    async def _record_attempt(
        self, username: str, address: str, method: str, ok: bool, reason: str
    ) -> None:
        async with self.service.sessions() as session, session.begin():
            session.add(signin.attempt(username, address, method, ok, reason))
        if not ok:
            log.warning("audit sign-in refused", extra={"method": method, "reason": reason})

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        if not cookie or not hmac.compare_digest(str(form.get("csrf", "")), cookie):
            return await self.login_form(request, failed=True)
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        address = request.remote or "unknown"
        async with self.service.sessions() as session:
            wait = await signin.wait_needed(
                session, self.settings, username, address, datetime.now(UTC)
            )
            user = await session.get(AuditUser, username)
        if wait > 0:
            # Refused before the password is looked at: right or wrong, it waits.
            await self._record_attempt(username, address, "password", False, "throttled")
            return await self.login_form(request, failed=True, wait=wait)
        # Unknown users cost one scrypt too, so timing does not tell which names exist.
        stored = (user.password_hash if user and not user.disabled else None) or _DUMMY_HASH
        ok = await asyncio.to_thread(check_password, password, stored)
        if not ok or user is None or not user.password_hash:
            await self._record_attempt(
                username, address, "password", False, "wrong username or password"
            )
            return await self.login_form(request, failed=True)
        await self._record_attempt(username, address, "password", True, "")
        return self._signed_in(
            request, await self._start_session(user), str(form.get("next") or "")
        )

    async def _start_session(self, user: AuditUser) -> str:
        token = secrets.token_urlsafe(32)
        hours = self.settings.audit_session_hours
        async with self.service.sessions() as session, session.begin():
            await session.execute(
                delete(AuditSession).where(AuditSession.expires_at < datetime.now(UTC))
            )
            session.add(
                AuditSession(
                    token_hash=_hash(token),
                    username=user.username,
                    csrf=secrets.token_urlsafe(32),
                    expires_at=datetime.now(UTC) + timedelta(hours=hours),
                )
            )
        return token

    def _signed_in(
        self, request: web.Request, token: str, target: str, via_page: bool = False
    ) -> web.StreamResponse:
        target = signin.safe_next(target)
        if via_page:
            # After a cross-site redirect from the provider a SameSite=Strict cookie is not
            # sent on the next redirect; a same-site page that moves on is. It is rendered like
            # every page (escaped, with the Content-Security-Policy).
            resp: web.StreamResponse = self.render(request, "moving.html", target=target)
        else:
            resp = redirect(target)
        resp.set_cookie(
            SESSION_COOKIE,
            token,
            path="/audit",
            httponly=True,
            samesite="Strict",
            secure=self.settings.audit_cookie_secure,
            max_age=self.settings.audit_session_hours * 3600,
        )
        resp.del_cookie(LOGIN_COOKIE, path="/audit")
        return resp

    # -- OpenID Connect ----------------------------------------------------------------------

    def _oidc(self) -> oidc.Client:
        s = self.settings
        if not (s.oidc_issuer and s.oidc_client_id):
            raise web.HTTPNotFound(text="OpenID Connect is not configured")
        if self.oidc is None:
            self.oidc = oidc.Client(
                s.oidc_issuer, s.oidc_client_id, s.oidc_client_secret or "", s.oidc_username_claim
            )
        return self.oidc

    def _redirect_uri(self, request: web.Request) -> str:
        return self.settings.oidc_redirect_uri or str(
            request.url.with_path("/audit/oidc/callback").with_query(None)
        )

    async def oidc_login(self, request: web.Request) -> web.StreamResponse:
        client = self._oidc()
        try:
            url, state = await client.authorize_url(
                self._redirect_uri(request), signin.safe_next(request.query.get("next"))
            )
        except (oidc.OidcError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("oidc sign-in could not start", extra={"error": str(exc)})
            return await self.login_form(request, failed=True)
        resp = redirect(url, status=302)
        # Lax: it must come back with the provider's cross-site redirect.
        resp.set_cookie(
            OIDC_COOKIE,
            state,
            path="/audit/oidc",
            httponly=True,
            samesite="Lax",
            secure=self.settings.audit_cookie_secure,
            max_age=oidc.PENDING_SECONDS,
        )
        return resp

    async def oidc_callback(self, request: web.Request) -> web.StreamResponse:
        client = self._oidc()
        state = request.query.get("state", "")
        address = request.remote or "unknown"
        try:
            if not state or not hmac.compare_digest(state, request.cookies.get(OIDC_COOKIE, "")):
                raise oidc.OidcError("the sign-in state does not belong to this browser")
            if "error" in request.query or "code" not in request.query:
                raise oidc.OidcError(f"the provider answered {request.query.get('error')!r}")
            claims, target = await client.finish(
                request.query["code"], state, self._redirect_uri(request)
            )
        except (oidc.OidcError, aiohttp.ClientError, TimeoutError) as exc:
            await self._record_attempt("(oidc)", address, "oidc", False, str(exc))
            return await self.login_form(request, failed=True)
        user, problem = await self._oidc_account(claims)
        shown = str(claims.get(client.username_claim) or claims["sub"])
        if user is None:
            await self._record_attempt(shown, address, "oidc", False, problem)
            return await self.login_form(request, failed=True)
        await self._record_attempt(user.username, address, "oidc", True, "")
        resp = self._signed_in(request, await self._start_session(user), target, via_page=True)
        resp.del_cookie(OIDC_COOKIE, path="/audit/oidc")
        return resp

    async def _oidc_account(self, claims: dict[str, Any]) -> tuple[AuditUser | None, str]:
        """The account bound to the token's issuer and subject. An OIDC account not yet bound
        is bound at its first sign-in whose username claim names it; after that the claim
        counts for nothing (a provider may reassign names, never subjects)."""
        issuer, subject = str(claims["iss"]), str(claims["sub"])
        name = claims.get(self._oidc().username_claim)
        async with self.service.sessions() as session, session.begin():
            user = await session.scalar(
                select(AuditUser).where(
                    AuditUser.oidc_issuer == issuer, AuditUser.oidc_subject == subject
                )
            )
            if user is None and name:
                named = await session.get(AuditUser, str(name))
                if named is not None and named.origin == "oidc":
                    if named.oidc_subject is not None:
                        return None, "the account is bound to another issuer and subject"
                    named.oidc_issuer, named.oidc_subject = issuer, subject
                    user = named
            if user is None or user.disabled or user.origin != "oidc":
                return None, "no OpenID Connect account for this issuer and subject"
            return user, ""

    async def logout(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            async with self.service.sessions() as session, session.begin():
                row = await session.get(AuditSession, _hash(token))
                if row is not None and hmac.compare_digest(str(form.get("csrf", "")), row.csrf):
                    await session.delete(row)
        resp = redirect("/audit/login")
        resp.del_cookie(SESSION_COOKIE, path="/audit")
        return resp

    async def home(self, request: web.Request) -> web.StreamResponse:
        found = await self._user(request)
        if found is None:
            raise web.HTTPSeeOther("/audit/login")
        raise web.HTTPSeeOther(
            "/audit/decisions" if found[0].role == "privacy_officer" else "/audit/status"
        )

    # -- pages -----------------------------------------------------------------------------

    async def decisions(self, request: web.Request) -> web.Response:
        try:
            f = queries.Filters.parse(request.query)
            after = request.query.get("after") or None
            if after:
                queries.decode_cursor(after)
        except ValueError:
            return self.render(
                request,
                "search.html",
                status=400,
                f=queries.Filters(),
                rows=[],
                next_url=None,
                bad_date=True,
                **self._choices(),
            )
        async with self.service.sessions() as session:
            rows, cursor = await queries.search(session, f, after)
        next_url = None
        if cursor:
            next_url = "/audit/decisions?" + urllib.parse.urlencode({**f.query(), "after": cursor})
        return self.render(
            request,
            "search.html",
            f=f,
            rows=rows,
            next_url=next_url,
            paged=bool(after),
            bad_date=False,
            **self._choices(),
        )

    def _choices(self) -> dict[str, Any]:
        return {"outcomes": queries.OUTCOMES, "categories": queries.CATEGORIES}

    def _db(self) -> str:
        return self.settings.database_url or ""

    def _verifiers(self) -> list[Any]:
        """The log's public keys, from its key list (never the private key)."""
        from services.consent.log import key_paths

        s = self.settings
        return verification.load_verifiers(
            key_paths(s.data_dir, s.log_key_file, s.log_keys_file)[1]
        )

    async def decision(self, request: web.Request) -> web.Response:
        async with self.service.sessions() as session:
            row = await session.scalar(
                select(DecisionRecord).where(DecisionRecord.id == request.match_info["id"])
            )
            head = await queries.latest_tree_head(session)
            review = await session.scalar(
                select(AuditReview).where(AuditReview.decision_id == request.match_info["id"])
            )
            glass_row = await session.get(GlassRelease, request.match_info["id"])
        if row is None:
            return self.render(request, "message.html", status=404, message="not_found")
        d = queries.decision_dict(row)
        check = await asyncio.to_thread(queries.check_decision, self._db(), self._verifiers(), row)
        return self.render(
            request,
            "decision.html",
            d=d,
            row=row,
            head=head,
            check=check,
            review=review,
            glass=glass_row,
            justification=glass.open_justification(glass_row, self.service.state["sealing_keys"])
            if glass_row is not None and "sealing_keys" in self.service.state
            else None,
            relied=queries.consents_relied_on(row),
            in_force=queries.consents_in_force(row),
            inputs=json.dumps(row.policy_input, indent=2, ensure_ascii=False)
            if row.policy_input
            else None,
        )

    async def status(self, request: web.Request) -> web.Response:
        async with self.service.sessions() as session:
            head = await queries.latest_tree_head(session)
            last = await session.scalar(
                select(AuditVerification).order_by(AuditVerification.id.desc()).limit(1)
            )
            cosignatures = list(
                await session.scalars(
                    select(WitnessCosignature).order_by(WitnessCosignature.witness)
                )
            )
            alarms = list(
                await session.scalars(
                    select(WitnessAlarm).order_by(WitnessAlarm.id.desc()).limit(20)
                )
            )
        return self.render(
            request, "status.html", head=head, last=last, cosignatures=cosignatures, alarms=alarms
        )

    async def _ask_witnesses(self, report: verification.Report) -> None:
        """Add what each witness cosigned (pinned ones, or those that cosigned this log)."""
        from services.consent import witnesses

        path = self.settings.witness_keys_file
        cosigners = (
            witnesses.read_cosigners(path)
            if path
            else await witnesses.known_cosigners(self.service.sessions, self.service.directory)
        )
        await witnesses.check_witnesses(self.service.nc, report, self._verifiers(), cosigners)

    async def verify_now(self, request: web.Request) -> web.StreamResponse:
        await queries.verify_and_record(
            self.service.sessions,
            self._db(),
            self._verifiers(),
            request[USER].username,
            witnesses=self._ask_witnesses,
        )
        raise web.HTTPSeeOther("/audit/status")

    async def consents(self, request: web.Request) -> web.Response:
        case_id = request.match_info["case_id"]
        async with self.service.sessions() as session:
            history = await queries.consent_history(session, case_id)
        return self.render(request, "consents.html", case_id=case_id, history=history)

    async def report(self, request: web.Request) -> web.Response:
        case_id = request.match_info["case_id"]
        async with self.service.sessions() as session:
            rows = await queries.case_decisions(session, case_id)
        names = {}
        for unit_id in {r.recipient_unit for r in rows} | {r.source_unit for r in rows}:
            unit = await self.service.directory.get(unit_id)
            names[unit_id] = unit.name if unit else unit_id
        return self.render(
            request,
            "report.html",
            case_id=case_id,
            rows=rows,
            names=names,
            generated=datetime.now(UTC),
        )

    async def glass(
        self, request: web.Request, saved: bool = False, error: str | None = None
    ) -> web.Response:
        async with self.service.sessions() as session:
            waiting = await queries.glass_queue(session)
            done = [
                i
                for i in await queries.glass_queue(session, include_reviewed=True)
                if i.review is not None
            ]
        return self.render(
            request,
            "glass.html",
            waiting=waiting,
            done=done,
            saved=saved,
            error=error,
            now=datetime.now(UTC),
            status=400 if error else 200,
        )

    async def review(self, request: web.Request) -> web.StreamResponse:
        form = request[FORM]
        decision_id = request.match_info["id"]
        verdict = {"approve": "approved", "reject": "rejected"}.get(str(form.get("verdict")))
        note = str(form.get("note", "")).strip()
        if verdict is None or not note:
            return await self.glass(request, error="review.note_needed")
        svc = self.service
        async with svc.outbox.write_lock, svc.sessions() as session, session.begin():
            row = await session.scalar(
                select(DecisionRecord).where(DecisionRecord.id == decision_id)
            )
            if row is None or not (row.legal_basis or "").startswith("break_the_glass:"):
                raise web.HTTPNotFound()
            if await session.scalar(
                select(AuditReview.id).where(AuditReview.decision_id == decision_id)
            ):
                raise web.HTTPSeeOther("/audit/glass")
            review_id = str(uuid.uuid4())
            now = datetime.now(UTC)
            body = {
                "kind": "btg.review",
                "id": review_id,
                "decision_id": decision_id,
                "decision_log_index": row.log_index,
                "verdict": verdict,
                "note_hash": "sha256:" + hashlib.sha256(note.encode()).hexdigest(),
                "reviewer": request[USER].username,
                "reviewed_at": now.isoformat(),
            }
            logged = await svc.state["log"].append(
                session, svc.outbox, "btg.review", review_id, body
            )
            index = logged.index
            session.add(
                AuditReview(
                    id=review_id,
                    decision_id=decision_id,
                    verdict=verdict,
                    note=note,
                    reviewer=request[USER].username,
                    reviewed_at=now,
                    log_index=index,
                )
            )
        svc.outbox.wake()
        return await self.glass(request, saved=True)

    async def what_if_form(self, request: web.Request) -> web.Response:
        return self.render(
            request,
            "whatif.html",
            result=None,
            error=None,
            form={},
            modules=[p.name for p in policy_files(POLICY_DIR)],
        )

    async def what_if(self, request: web.Request) -> web.Response:
        form = request[FORM]
        modules = [p.name for p in policy_files(POLICY_DIR)]
        values = {
            k: str(form.get(k, "")) for k in ("module", "rego", "directory", "since", "until")
        }
        upload = form.get("upload")
        rego = values["rego"]
        if isinstance(upload, web.FileField) and upload.filename:
            rego = upload.file.read().decode("utf-8", errors="replace")
        directory = Path(values["directory"]) if values["directory"].strip() else None
        try:
            f = queries.Filters.parse(values)
            path = queries.candidate_directory(values["module"], rego, directory)
        except ValueError as exc:
            return self.render(
                request,
                "whatif.html",
                status=400,
                result=None,
                error=str(exc),
                form=values,
                modules=modules,
            )
        try:
            async with self.service.sessions() as session:
                rows = await queries.decisions_between(session, f.since, f.until)
            result = await asyncio.to_thread(queries.what_if, path, rows)
        finally:
            if path != directory:
                import shutil

                shutil.rmtree(path, ignore_errors=True)
        return self.render(
            request, "whatif.html", result=result, error=None, form=values, modules=modules
        )

    async def _newest(self, request: web.Request, model: Any, template: str) -> web.Response:
        """Rows of a log-like table, newest first, 50 a page, keyset on the id."""
        before = request.query.get("before")
        stmt = select(model).order_by(model.id.desc()).limit(51)
        if before and before.isdigit():
            stmt = stmt.where(model.id < int(before))
        async with self.service.sessions() as session:
            rows = list(await session.scalars(stmt))
        next_url = f"{request.path}?before={rows[49].id}" if len(rows) > 50 else None
        return self.render(request, template, rows=rows[:50], next_url=next_url)

    async def views(self, request: web.Request) -> web.Response:
        return await self._newest(request, AuditView, "views.html")

    async def sign_ins(self, request: web.Request) -> web.Response:
        """Sign-in attempts, newest first: refused ones with why (throttled, wrong password,
        an OpenID Connect subject without an account)."""
        return await self._newest(request, AuditSignIn, "signins.html")

    def routes(self) -> list[web.AbstractRouteDef]:
        p = self.page
        return [
            web.get("/audit", self.home),
            web.get("/audit/login", self.login_form),
            web.post("/audit/login", self.login),
            web.post("/audit/logout", self.logout),
            web.get("/audit/oidc/login", self.oidc_login),
            web.get("/audit/oidc/callback", self.oidc_callback),
            web.get("/audit/decisions", p()(self.decisions)),
            web.get("/audit/decisions/{id}", p()(self.decision)),
            web.get("/audit/status", p(ANYONE)(self.status)),
            web.post("/audit/status/verify", p(ANYONE)(self.verify_now)),
            web.get("/audit/cases/{case_id}/consents", p()(self.consents)),
            web.get("/audit/cases/{case_id}/report", p()(self.report)),
            web.get("/audit/glass", p()(self.glass)),
            web.post("/audit/glass/{id}/review", p()(self.review)),
            web.get("/audit/what-if", p()(self.what_if_form)),
            web.post("/audit/what-if", p()(self.what_if)),
            web.get("/audit/views", p()(self.views)),
            web.get("/audit/sign-ins", p()(self.sign_ins)),
            web.static("/audit/static", HERE / "static"),
        ]
