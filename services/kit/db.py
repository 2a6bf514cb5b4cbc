"""Database engine, the kit's own tables (outbox, inbox) and a UTC datetime column type."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, Integer, LargeBinary, MetaData, String, event, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, ORMExecuteState, Session, mapped_column
from sqlalchemy.sql.util import find_tables
from sqlalchemy.types import TypeDecorator

from services.kit.private import private_dir
from services.kit.sqlite_inline import connect as sqlite_inline_connect


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC and always returns an aware datetime (SQLite would drop the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class KitBase(DeclarativeBase):
    metadata = MetaData()


class OutboxRow(KitBase):
    """A message written with the state change that caused it; the relay publishes it."""

    __tablename__ = "kit_outbox"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    msg_id: Mapped[str] = mapped_column(String(128), unique=True)
    subject: Mapped[str] = mapped_column(String(255))
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)


class InboxRow(KitBase):
    """Ids of messages a consumer has applied, committed with their effect."""

    __tablename__ = "kit_inbox"
    consumer: Mapped[str] = mapped_column(String(128), primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# SQL statements (an executemany counts once) this process has sent, for /healthz and bench/.
statements = {"n": 0}
# EMA_SQL_PROFILE=1: also count them by statement text (bench/ reads it from /healthz).
by_text: Counter[str] | None = Counter() if os.environ.get("EMA_SQL_PROFILE") else None


def _count_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    statements["n"] += 1
    if by_text is not None:
        by_text[" ".join(statement.split())[:90]] += 1


def sqlite_inline_default() -> bool:
    """SQLite calls run on the event loop (services/kit/sqlite_inline.py) unless
    EMA_SQLITE_THREAD=1 asks for aiosqlite's own thread (docs/decisions/0016)."""
    return os.environ.get("EMA_SQLITE_THREAD", "").lower() not in ("1", "true", "yes")


def make_engine(url: str, *, sqlite_inline: bool | None = None) -> AsyncEngine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            private_dir(Path(path).parent)
        kwargs["connect_args"] = {"timeout": 30}
        if sqlite_inline_default() if sqlite_inline is None else sqlite_inline:
            kwargs["connect_args"]["async_creator_fn"] = sqlite_inline_connect
    # Parameters may be personal data (a sibling's DUF number in a unique-key error): errors
    # and logs say which statement failed, never with which values.
    engine = create_async_engine(url, hide_parameters=True, **kwargs)
    event.listen(engine.sync_engine, "before_cursor_execute", _count_statement)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


async def create_tables(engine: AsyncEngine, *metadatas: MetaData) -> None:
    async with engine.begin() as conn:
        for md in (KitBase.metadata, *metadatas):
            await conn.run_sync(md.create_all)


QUEUED = "kit_queued_rows"
VISIBLE = "kit_visible_queued"
AT_COMMIT = "kit_at_commit"
FINISHERS = "kit_finishers"
T = TypeVar("T")


class KitSession(Session):
    """A session that writes rows queued with `queue_rows` as one executemany per table when
    its transaction commits (before the commit's own flush), in the order they were queued,
    and forgets them when it rolls back. Functions given to `before_commit` run first, once,
    in the transaction (they may queue rows and send statements)."""


def queue_rows(
    session: AsyncSession | Session, model: type, row: dict[str, Any], *, visible: bool = False
) -> None:
    """Queue one row of `model` for an executemany at commit (see KitSession). `visible`: the
    transaction may read or change the row before it commits, so the rows of `model` queued
    so far are written as soon as a statement of the session names `model`'s table (else
    they are written at commit only, and the transaction does not see them)."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    queued: dict[type, list[dict[str, Any]]] = sync.info.setdefault(QUEUED, {})
    queued.setdefault(model, []).append(row)
    if visible:
        sync.info.setdefault(VISIBLE, set()).add(model)


def at_commit(
    session: AsyncSession | Session,
    key: str,
    make: Callable[[], T],
    write: Callable[[Session, T], None],
) -> T:
    """State of this transaction under `key`, made on first use. When the transaction commits,
    `write(session, state)` runs before the queued rows are written, so the rows it queues go
    into the same executemany; a rollback forgets the state with the queued rows. Used to
    gather what a transaction causes into fewer messages (docs/decisions/0018)."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    hooks: dict[str, tuple[Any, Callable[[Session, Any], None]]] = sync.info.setdefault(
        AT_COMMIT, {}
    )
    if key not in hooks:
        hooks[key] = (make(), write)
    return hooks[key][0]


def _run_all(session: Session, fns: list[Callable[[Session], None]]) -> None:
    for fn in fns:
        fn(session)


def before_commit(session: AsyncSession | Session, fn: Callable[[Session], None]) -> None:
    """Run `fn(session)` when this transaction commits, before the queued rows are written
    (what a whole batch shares, e.g. the decision log's one signed head per transaction).
    Forgotten when the transaction rolls back."""
    at_commit(session, FINISHERS, list, _run_all).append(fn)


def per_transaction(session: AsyncSession | Session, key: str, factory: Callable[[], Any]) -> Any:
    """A value kept for the current transaction of `session` only (a new one starts empty)."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    transaction = sync.get_transaction()
    held = sync.info.get(key)
    if held is None or held[0] is not transaction:
        held = sync.info[key] = (transaction, factory())
    return held[1]


def _insert(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(model), rows)


def _write_queued(session: Session) -> None:
    session.info.pop(VISIBLE, None)
    queued = session.info.pop(QUEUED, None)
    if queued:
        for model, rows in queued.items():
            _insert(session, model, rows)


@event.listens_for(KitSession, "do_orm_execute")
def _write_visible_first(state: ORMExecuteState) -> None:
    """Rows queued with `visible=True` are written before a statement that names their table
    runs (a read of the case's tasks after a task was scheduled in the same batch)."""
    session = state.session
    visible: set[type] | None = session.info.get(VISIBLE)
    if not visible:
        return
    queued: dict[type, list[dict[str, Any]]] = session.info.get(QUEUED, {})
    named = {t.name for t in find_tables(state.statement, include_crud=True)}
    for model in [m for m in visible if m.__table__.name in named]:
        visible.discard(model)  # before the insert, whose own statement comes back here
        if rows := queued.pop(model, None):
            _insert(session, model, rows)


@event.listens_for(KitSession, "before_commit")
def _finish(session: Session) -> None:
    # A hook may add rows, or another hook (a finisher that queues messages gathered with
    # at_commit): run until none is left.
    while hooks := session.info.pop(AT_COMMIT, None):
        for state, write in hooks.values():
            write(session, state)
    _write_queued(session)


async def write_queued(session: AsyncSession) -> None:
    """Write the rows queued so far now, not at commit: on SQLite this takes the database's
    write lock at this point (services/consent/handlers.py::lock_case)."""
    await session.run_sync(_write_queued)


@event.listens_for(KitSession, "after_rollback")
@event.listens_for(KitSession, "after_soft_rollback")
def _forget_queued(session: Session, *_args: Any) -> None:
    session.info.pop(QUEUED, None)
    session.info.pop(VISIBLE, None)
    session.info.pop(AT_COMMIT, None)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=KitSession)
