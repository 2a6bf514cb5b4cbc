"""The runtime every service shares: settings, database, bus, consumers, outbox relay, health."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel
from sqlalchemy import MetaData, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from contracts.messages import UnitKind
from contracts.registry import Contract, contract_for_type, stream_for_subject
from services.kit import api_auth, bus, db, migrations
from services.kit.db import (
    InboxRow,
    create_tables,
    make_engine,
    queue_rows,
    sessionmaker,
    utcnow,
)
from services.kit.directory import BUCKET, Directory, Unit
from services.kit.logs import safe_error, setup_logging
from services.kit.metrics import Metrics
from services.kit.outbox import Outbox, current_correlation
from services.kit.settings import Settings
from services.kit.signing import UnitKey
from services.kit.verify import Invalid, Verified, verify_message

# A batch interrupted by an infrastructure error (not by its messages) is tried again in
# process this many times, its messages kept in progress, before redelivery takes over.
BATCH_ATTEMPTS = 6

log = logging.getLogger("kit.service")


class Rejected(Exception):
    """The domain refuses the message (e.g. a decision for an unknown case). Nothing is applied;
    the message goes to the dead-letter stream with this reason."""


class NotYet(Exception):
    """The message refers to something not seen yet (e.g. a case whose opening is still on its
    way). It is retried with backoff like a failure; after the last attempt it is
    dead-lettered with this reason."""


@dataclass
class Context:
    """What a handler gets: the verified message, an open transaction and the outbox."""

    event: CloudEvent
    data: Any
    sender: Unit
    session: AsyncSession
    outbox: Outbox
    settings: Settings
    directory: Directory

    def emit(
        self, type_: str, data: BaseModel, *, case_id: str | None = None, unit: str | None = None
    ) -> CloudEvent:
        """Queue a message in the same transaction as the state change."""
        return self.outbox.add(self.session, type_, data, case_id=case_id, unit=unit)


HandlerFunc = Callable[[Context], Awaitable[None]]


def route(handlers: dict[str, HandlerFunc]) -> HandlerFunc:
    """One consumer, several message types: call the handler for the event's type."""

    async def dispatch(ctx: Context) -> None:
        await handlers[ctx.event.type](ctx)

    return dispatch


@dataclass
class Subscription:
    durable: str
    contracts: dict[str, Contract]
    func: HandlerFunc
    handled: int = 0
    dead_lettered: int = 0

    @property
    def stream(self) -> str:
        names = {stream_for_subject(c.subject_for("x")).name for c in self.contracts.values()}
        if len(names) != 1:
            raise ValueError(f"{self.durable}: one consumer reads one stream, not {names}")
        return names.pop()

    @property
    def filter_subjects(self) -> list[str]:
        return sorted({c.subject.replace("{unit}", "*") for c in self.contracts.values()})

    def consumer_config(self, settings: Settings) -> ConsumerConfig:
        """The durable the operator's tooling provisions for this subscription."""
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=settings.ack_wait,
            # Unlimited at the server: the kit counts attempts and dead-letters at max_deliver,
            # so a message is never dropped without a trace.
            max_deliver=-1,
            max_ack_pending=1000,
            filter_subjects=self.filter_subjects,
        )


@dataclass
class Service:
    name: str
    metadata: MetaData | None = None
    settings_cls: type[Settings] = Settings
    # True: the database is brought to the head of services/<name>/migrations at start
    # (services.kit.migrations); False: the kit's tables and `metadata` are created as they are.
    migrate: bool = False
    settings: Settings = field(init=False)
    subscriptions: list[Subscription] = field(default_factory=list)
    startup: list[Callable[[Service], Awaitable[None]]] = field(default_factory=list)
    background: list[Callable[[Service], Awaitable[None]]] = field(default_factory=list)
    shutdown: list[Callable[[Service], Awaitable[None]]] = field(default_factory=list)
    routes: list[web.RouteDef] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    # Who may call each HTTP route (by its path pattern); a route not listed: the operator.
    access: dict[str, api_auth.Access] = field(default_factory=dict)
    view_recorder: api_auth.ViewRecorder | None = None

    def handles(self, *types: str, durable: str) -> Callable[[HandlerFunc], HandlerFunc]:
        contracts = {}
        for type_ in types:
            contract = contract_for_type(type_)
            if contract is None:
                raise LookupError(f"unknown message type {type_!r}")
            contracts[type_] = contract

        def register(func: HandlerFunc) -> HandlerFunc:
            self.subscriptions.append(Subscription(durable, contracts, func))
            return func

        return register

    # -- running -------------------------------------------------------------------------

    def main(self) -> None:
        os.umask(0o077)  # databases, keys and logs this process creates are its own
        self.settings = self.settings_cls.from_env(self.name)
        setup_logging(self.name, self.settings.log_level)
        try:
            asyncio.run(self.run())
        except KeyboardInterrupt:
            pass

    async def run(self, install_signal_handlers: bool = True) -> None:
        s = self.settings
        self.stop_event = asyncio.Event()
        self.metrics = Metrics(self.name)
        self.metrics.refreshers.append(self._refresh_metrics)
        self.engine = make_engine(s.database_url or "")
        if self.migrate:
            for step in await migrations.upgrade(self.engine, self.name):
                log.info("database " + step)
        else:
            await create_tables(self.engine, *([self.metadata] if self.metadata else []))
        self.sessions = sessionmaker(self.engine)
        assert s.key_file is not None and s.unit_id is not None
        self.key = UnitKey.load_or_create(s.unit_id, s.key_file)
        self.outbox = Outbox(self.sessions, self.key)
        self.nc: Client = await bus.connect(
            s.nats_url, f"emaflyt-{self.name}", **bus.credentials(self.key, s.nats_jwt_file)
        )
        self.js: JetStreamContext = self.nc.jetstream(timeout=10)
        self.directory = Directory(await self._directory_bucket())
        await self.directory.add_key(
            s.unit_id, f"emaflyt {self.name}", UnitKind.SERVICE, self.key.kid, self.key.public_b64
        )
        for hook in self.startup:
            await hook(self)
        tasks = [asyncio.create_task(self.outbox.run(self.js), name="outbox")]
        for sub in self.subscriptions:
            psub = await self._bind(sub)
            tasks.append(asyncio.create_task(self._consume(sub, psub), name=sub.durable))
        tasks += [asyncio.create_task(job(self), name=job.__name__) for job in self.background]
        runner = await self._serve_http()
        if install_signal_handlers:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop_event.set)
        self.ready = True
        where = {"http": f"{s.http_host}:{s.http_port}", "unit": s.unit_id}
        log.info("service ready", extra={**where, "nats": bus.redact(s.nats_url)})
        watch = [asyncio.create_task(self.stop_event.wait())] + tasks
        done, _ = await asyncio.wait(watch, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not watch[0] and task.exception():
                log.error("task died", extra={"task": task.get_name()}, exc_info=task.exception())
        log.info("stopping")
        for task in [watch[0], *tasks]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        for hook in self.shutdown:
            try:
                await hook(self)
            except Exception as exc:  # stopping goes on
                log.warning(
                    "shutdown hook failed", extra={"hook": hook.__name__, "error": safe_error(exc)}
                )
        # Close rather than drain: every message is acked only after its commit, so anything
        # in flight is redelivered, and unpublished outbox rows are relayed on the next start.
        await self.nc.close()
        await self.engine.dispose()
        self.ready = False
        log.info("stopped")

    async def _directory_bucket(self) -> KeyValue:
        """The unit directory, which the operator's tooling creates before services start."""
        for attempt in range(1, 41):
            try:
                return await self.js.key_value(BUCKET)
            except Exception as exc:
                if attempt == 40:
                    raise RuntimeError(
                        f"the unit directory ({BUCKET}) is not there: the operator's tooling "
                        "provisions it (emaflyt up, or python -m deploy.provision)"
                    ) from exc
                await asyncio.sleep(0.25)
        raise AssertionError("unreachable")

    async def _bind(self, sub: Subscription) -> JetStreamContext.PullSubscription:
        """Bind the durable the operator provisioned; a service creates nothing on the bus."""
        for attempt in range(1, 41):
            try:
                await self.js.consumer_info(sub.stream, sub.durable)
                break
            except NotFoundError:
                if attempt == 40:
                    raise RuntimeError(
                        f"consumer {sub.durable} on stream {sub.stream} is not provisioned: "
                        "the operator's tooling creates it (emaflyt up, python -m deploy.provision)"
                    ) from None
            except Exception as exc:  # a cluster still electing its leaders
                if attempt == 40:
                    raise
                log.info(
                    "consumer not ready, retrying",
                    extra={"consumer": sub.durable, "error": repr(exc)},
                )
            await asyncio.sleep(0.25)
        return await self.js.pull_subscribe_bind(sub.durable, sub.stream)

    async def _consume(self, sub: Subscription, psub: JetStreamContext.PullSubscription) -> None:
        # nats-py's fetch can turn a cancellation into a timeout: the stop flag ends the loop.
        while not self.stop_event.is_set():
            try:
                msgs = await psub.fetch(self.settings.fetch_batch, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fetch failed", extra={"consumer": sub.durable, "error": repr(exc)})
                await asyncio.sleep(0.5)
                continue
            await self._handle_batch(sub, msgs)

    async def _check(self, sub: Subscription, msg: Msg) -> Verified | None:
        """Verify one message; an invalid one is dead-lettered here and None returned."""
        attempts = msg.metadata.num_delivered if msg.metadata else 1
        max_deliver = self.settings.max_deliver
        try:
            if attempts > max_deliver:
                raise Invalid(f"gave up after {max_deliver} delivery attempts without an ack")
            return await verify_message(
                msg.subject, msg.headers, msg.data, self.directory, sub.contracts
            )
        except Invalid as exc:
            await self._dead_letter(sub, msg, str(exc), attempts)
            return None

    async def _handle_batch(self, sub: Subscription, msgs: list[Msg]) -> None:
        # While the batch is worked on (a slow disk, a lock held by a replica, a one-by-one
        # fallback), tell the server it is in progress, so it is not redelivered to another
        # consumer and its delivery count only grows when a process really lost it.
        heartbeat = asyncio.create_task(self._in_progress(msgs), name="in-progress")
        try:
            with self.metrics.seconds(sub.durable).time():
                for attempt in range(1, BATCH_ATTEMPTS + 1):
                    try:
                        await self._handle_verified(sub, [m for m in msgs if not m.is_acked])
                        return
                    except Exception as exc:  # the directory or the DLQ unreachable a moment
                        log.warning(
                            "batch interrupted; messages kept, trying again",
                            extra={
                                "consumer": sub.durable,
                                "attempt": attempt,
                                "error": f"{type(exc).__name__}: {exc}",
                            },
                        )
                        if self.stop_event.is_set():
                            return
                        await asyncio.sleep(min(0.5 * 2**attempt, 10.0))
                # Still failing: leave the rest to the server's redelivery (counted, bounded).
        finally:
            heartbeat.cancel()

    async def _in_progress(self, msgs: list[Msg]) -> None:
        interval = max(self.settings.ack_wait / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            for msg in msgs:
                if not msg.is_acked:  # acked, nacked or termed
                    try:
                        await msg.in_progress()
                    except Exception:  # disconnected: the redelivery that follows is harmless
                        return

    async def _handle_verified(self, sub: Subscription, msgs: list[Msg]) -> None:
        """Apply a fetched batch in one transaction; if any message fails, apply them one
        transaction each so only the failing one is retried or dead-lettered."""
        ready = [(msg, v) for msg in msgs if (v := await self._check(sub, msg)) is not None]
        if len(ready) > 1:
            try:
                applied = await self._apply(sub, [v for _, v in ready])
            except Exception as exc:
                log.info(
                    "batch not applied, applying one by one",
                    extra={
                        "consumer": sub.durable,
                        "size": len(ready),
                        "error": type(exc).__name__,
                    },
                )
                applied = None
            if applied is not None:
                await self._committed(sub, [msg for msg, _ in ready], any(applied))
                return
        for msg, v in ready:
            await self._handle_one(sub, msg, v)

    async def _handle_one(self, sub: Subscription, msg: Msg, v: Verified) -> None:
        attempts = msg.metadata.num_delivered if msg.metadata else 1
        max_deliver = self.settings.max_deliver
        try:
            applied = await self._apply(sub, [v])
        except Rejected as exc:
            await self._dead_letter(sub, msg, f"rejected: {exc}", attempts)
            return
        except NotYet as exc:
            reason = f"not applicable after {attempts}/{max_deliver} attempts: {exc}"
            log.info(reason, extra={"consumer": sub.durable, "msg_id": v.event.id})
            if attempts >= max_deliver:
                await self._dead_letter(sub, msg, reason, attempts)
            else:
                await msg.nak(delay=min(0.2 * 2**attempts, 30.0))
            return
        except Exception as exc:
            self.metrics.failed(sub.durable).inc()
            reason = f"handler failed on attempt {attempts}/{max_deliver}: {safe_error(exc)}"
            log.warning(
                reason, extra={"consumer": sub.durable, "msg_id": v.event.id}, exc_info=True
            )
            if attempts >= max_deliver:
                await self._dead_letter(sub, msg, reason, attempts)
            else:
                await msg.nak(delay=min(0.2 * 2**attempts, 30.0))
            return
        await self._committed(sub, [msg], applied[0])

    async def _committed(self, sub: Subscription, msgs: list[Msg], applied: bool) -> None:
        if applied:
            self.outbox.wake()
            for hook in self.after_commit:
                hook()
            if self.settings.fault_crash_after_commit:
                log.warning("fault injection: killing the process after commit")
                os.kill(os.getpid(), signal.SIGKILL)
        for msg in msgs:
            await msg.ack()
        sub.handled += len(msgs)
        self.metrics.handled(sub.durable).inc(len(msgs))

    async def _apply(self, sub: Subscription, items: list[Verified]) -> list[bool]:
        """Run the handlers and record the message ids in one transaction. Returns, per
        message, whether it was applied now (False: it had been applied before)."""
        ids = [v.event.id for v in items]
        try:
            async with self.outbox.write_lock, self.sessions() as session, session.begin():
                seen = set(
                    await session.scalars(
                        select(InboxRow.msg_id).where(
                            InboxRow.consumer == sub.durable, InboxRow.msg_id.in_(ids)
                        )
                    )
                )
                applied = []
                now = utcnow()
                for v in items:
                    if v.event.id in seen:
                        applied.append(False)
                        continue
                    seen.add(v.event.id)
                    queue_rows(
                        session,
                        InboxRow,
                        {"consumer": sub.durable, "msg_id": v.event.id, "processed_at": now},
                    )
                    ctx = Context(
                        v.event,
                        v.data,
                        v.sender,
                        session,
                        self.outbox,
                        self.settings,
                        self.directory,
                    )
                    token = current_correlation.set(v.event.correlationid or v.event.id)
                    try:
                        await sub.func(ctx)
                    finally:
                        current_correlation.reset(token)
                    applied.append(True)
        except IntegrityError:
            # A replica applied one of these at the same moment: its effect stands, and the
            # rest are applied one by one on the fallback path.
            if len(items) == 1:
                async with self.sessions() as session:
                    if await session.get(InboxRow, (sub.durable, ids[0])):
                        return [False]
            raise
        for v, done in zip(items, applied, strict=True):
            log.info(
                "handled" if done else "already handled",
                extra={
                    "type": v.event.type,
                    "msg_id": v.event.id,
                    "case": v.event.subject,
                    "from": v.sender.id,
                    "batch": len(items),
                    "correlation": v.event.correlationid or v.event.id,
                },
            )
        return applied

    async def _dead_letter(self, sub: Subscription, msg: Msg, reason: str, attempts: int) -> None:
        try:
            await bus.dead_letter(
                self.js, self.name, sub.durable, msg, reason, attempts, self._dead_letter_key()
            )
        except Exception:
            log.warning("dead-letter publish failed; will be redelivered", exc_info=True)
            await msg.nak(delay=1.0)
            return
        await msg.ack()
        sub.dead_lettered += 1
        self.metrics.dead(sub.durable).inc()

    # -- health --------------------------------------------------------------------------

    def _dead_letter_key(self) -> str | None:
        path = self.settings.dead_letter_key_file
        return path.read_text().strip() if path and path.exists() else None

    def _issuers(self) -> list[Any]:
        """The API token issuer's public keys, read again while none are there yet."""
        if not getattr(self, "api_issuers", None):
            self.api_issuers = api_auth.load_issuers(self.settings.api_issuer_file)
        return self.api_issuers

    async def _serve_http(self) -> web.AppRunner:
        sign_in = api_auth.middleware(self.access, self._issuers, lambda: self.view_recorder)
        app = web.Application(middlewares=[sign_in])
        app.add_routes(
            [
                web.get("/healthz", self._health),
                web.get("/readyz", self._health),
                web.get("/livez", self._live),
                web.get("/metrics", self._metrics),
            ]
        )
        app.add_routes(self.routes)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.http_host, self.settings.http_port)
        await site.start()
        return runner

    async def _live(self, _request: web.Request) -> web.Response:
        """Liveness: the process and its event loop answer. Readiness is /readyz."""
        return web.json_response({"service": self.name, "status": "alive"})

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = await self.metrics.render()
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def _refresh_metrics(self) -> None:
        try:
            self.metrics.outbox.set(await self.outbox.pending())
            for sub in self.subscriptions:
                info = await self.js.consumer_info(sub.stream, sub.durable, timeout=2)
                self.metrics.lag(sub.durable).set(info.num_pending)
            subject = f"ema.dlq.{self.name}"
            dlq = await self.js.stream_info("DLQ", subjects_filter=subject)
            self.metrics.dead_depth.set((dlq.state.subjects or {}).get(subject, 0))
        except Exception:  # a scrape during an outage shows the last values
            log.debug("metrics refresh failed", exc_info=True)

    async def _health(self, request: web.Request) -> web.Response:
        connected = self.nc.is_connected
        try:
            pending = await self.outbox.pending()
            db_ok = True
        except Exception:
            pending, db_ok = -1, False
        ok = connected and db_ok and getattr(self, "ready", False)
        body = {
            "service": self.name,
            "status": "ok" if ok else "degraded",
            "unit": self.settings.unit_id,
            "nats_connected": connected,
            "database": "ok" if db_ok else "error",
            "outbox_pending": pending,
            "outbox_published": self.outbox.published,
            "sql_statements": db.statements["n"],
            **({"sql_by_text": db.by_text.most_common(25)} if db.by_text is not None else {}),
            "consumers": {
                s.durable: {"handled": s.handled, "dead_lettered": s.dead_lettered}
                for s in self.subscriptions
            },
        }
        return web.json_response(body, status=200 if ok else 503)
