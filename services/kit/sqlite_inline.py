"""SQLite calls run on the event loop instead of through aiosqlite's worker thread.

aiosqlite runs every sqlite3 call on a thread of its own: a queue put, a thread wake-up, a
`call_soon_threadsafe` back and the GIL passed twice, about 17 µs a call, more than most of
the statements themselves cost (issue 17: 19 % of an arrival's CPU). `InlineConnection` is
an aiosqlite `Connection` whose calls run directly in the caller, so SQLAlchemy's aiosqlite
dialect uses it unchanged (through its `async_creator_fn` connect argument).

The one thing a thread gave for free is waiting for a lock without stopping the loop. Here
SQLite's busy timeout is 0, so a call that meets another writer (another process, or
another connection of this one holding a write transaction across an await) fails at once
with SQLITE_BUSY; that call alone is then run again on a worker thread with the full busy
timeout, so the loop, and with it NATS heartbeats and the transaction that holds the lock,
keeps running. docs/decisions/0016.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite

SQLITE_BUSY = 5


def _busy(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF == 5


class _InlineQueue:
    """What SQLAlchemy's dialect puts work on directly (its isolation-level setter): run it."""

    def __init__(self, conn: InlineConnection) -> None:
        self.conn = conn

    def put_nowait(self, item: tuple[asyncio.Future | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 (handed to the awaiting caller)
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection without its thread (see the module's docstring)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_timeout_s: float) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _InlineQueue(self)  # type: ignore[assignment]
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self.waited_for_lock = 0  # calls that met another writer and waited on a thread

    def __await__(self):  # noqa: ANN204 (aiosqlite's own signature)
        return self._connect().__await__()

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        self.waited_for_lock += 1
        return await asyncio.to_thread(self._wait_and_run, partial(fn, *args, **kwargs))

    def _wait_and_run(self, function: Callable[[], Any]) -> Any:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        try:
            return function()
        finally:
            conn.execute("PRAGMA busy_timeout=0")

    def stop(self) -> None:  # type: ignore[override]
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def connect(database: str, *, timeout: float = 30.0, **kwargs: Any) -> InlineConnection:
    """The `async_creator_fn` for SQLAlchemy's aiosqlite dialect."""
    kwargs.pop("check_same_thread", None)
    connector = partial(
        sqlite3.connect, database, timeout=0, check_same_thread=False, **kwargs
    )  # a busy wait goes to a thread with `timeout` (above), never on the loop
    return InlineConnection(connector, timeout)
