"""SQLite calls inline on the event loop (docs/decisions/0016) and rows queued for one
executemany at commit (docs/decisions/0017)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select, text

from services.kit.db import (
    InboxRow,
    KitBase,
    create_tables,
    make_engine,
    queue_rows,
    sessionmaker,
    utcnow,
)
from services.kit.sqlite_inline import InlineConnection


async def test_a_writer_waiting_for_the_lock_does_not_stop_the_loop(tmp_path: Path) -> None:
    """B meets A's write lock; A's transaction goes on only once another task has run on the
    loop. Were B's wait on the loop, A could never commit and B would fail on the timeout."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'lock.db'}", sqlite_inline=True)
    await create_tables(engine)
    order: list[str] = []
    a_holds, b_waits, other_ran = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def a() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("insert into kit_inbox values ('a', '1', '2026-01-01')"))
            a_holds.set()
            await b_waits.wait()
            await other_ran.wait()
        order.append("a committed")

    async def b() -> None:
        await a_holds.wait()
        async with engine.begin() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert isinstance(raw, InlineConnection)
            b_waits.set()
            await conn.execute(text("insert into kit_inbox values ('b', '2', '2026-01-01')"))
            assert raw.waited_for_lock == 1
        order.append("b committed")

    async def other() -> None:
        await b_waits.wait()
        await asyncio.sleep(0.05)  # B is in its statement, waiting for A's lock, by now
        order.append("other ran")
        other_ran.set()

    await asyncio.gather(a(), b(), other())
    assert order == ["other ran", "a committed", "b committed"]
    async with engine.connect() as conn:
        assert (await conn.execute(text("select count(*) from kit_inbox"))).scalar() == 2
    await engine.dispose()


async def test_the_thread_stays_available_by_flag(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("EMA_SQLITE_THREAD", "1")
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'thread.db'}")
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert not isinstance(raw, InlineConnection)
        assert (await conn.execute(text("select 1"))).scalar() == 1
    await engine.dispose()


async def test_queued_rows_are_written_in_order_at_commit_and_forgotten_on_rollback(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'queued.db'}")
    await create_tables(engine, KitBase.metadata)
    sessions = sessionmaker(engine)
    now = utcnow()
    async with sessions() as session:
        async with session.begin():
            for i in range(3):
                queue_rows(
                    session, InboxRow, {"consumer": "c", "msg_id": f"m{i}", "processed_at": now}
                )
            # Not written before the commit.
            assert (await session.scalars(select(InboxRow.msg_id))).all() == []
        async with session.begin():
            queue_rows(session, InboxRow, {"consumer": "c", "msg_id": "lost", "processed_at": now})
            await session.rollback()
        async with session.begin():
            queue_rows(session, InboxRow, {"consumer": "c", "msg_id": "m3", "processed_at": now})
    async with engine.connect() as conn:
        rows = (await conn.execute(text("select msg_id from kit_inbox order by rowid"))).all()
    assert [r[0] for r in rows] == ["m0", "m1", "m2", "m3"]
    await engine.dispose()


async def test_state_gathered_in_a_transaction_is_written_at_commit_and_forgotten_on_rollback(
    tmp_path: Path,
) -> None:
    """What a transaction gathers with at_commit becomes rows when it commits, in the same
    executemany as the rows queued directly, and nothing when it rolls back
    (docs/decisions/0018)."""
    from services.kit.db import at_commit

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'gather.db'}", sqlite_inline=True)
    await create_tables(engine)
    sessions = sessionmaker(engine)
    written: list[list[str]] = []

    def write(session, gathered: list[str]) -> None:  # noqa: ANN001
        written.append(list(gathered))
        for msg_id in gathered:
            queue_rows(
                session, InboxRow, {"consumer": "c", "msg_id": msg_id, "processed_at": utcnow()}
            )

    async with sessions() as session, session.begin():
        for msg_id in ("a", "b"):
            at_commit(session, "ids", list, write).append(msg_id)
        queue_rows(session, InboxRow, {"consumer": "c", "msg_id": "z", "processed_at": utcnow()})
    try:
        async with sessions() as session, session.begin():
            at_commit(session, "ids", list, write).append("never")
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    async with sessions() as session:
        assert sorted(await session.scalars(select(InboxRow.msg_id))) == ["a", "b", "z"]
    assert written == [["a", "b"]]
    await engine.dispose()


async def test_visible_rows_are_written_before_a_statement_on_their_table(tmp_path: Path) -> None:
    """Rows queued with visible=True (planning's new tasks) are seen by a read or an update of
    their table later in the transaction, while other tables' rows still wait for the commit;
    a rollback forgets them like any queued row."""
    from sqlalchemy import update

    from services.kit.db import OutboxRow

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'visible.db'}", sqlite_inline=True)
    await create_tables(engine)
    sessions = sessionmaker(engine)
    now = utcnow()

    def outbox_row(msg_id: str) -> dict:
        return {"msg_id": msg_id, "subject": "s", "headers": {}, "body": b"", "created_at": now}

    async with sessions() as session, session.begin():
        for i in range(2):
            row = {"consumer": "c", "msg_id": f"m{i}", "processed_at": now}
            queue_rows(session, InboxRow, row, visible=True)
        queue_rows(session, OutboxRow, outbox_row("o1"))
        assert sorted(await session.scalars(select(InboxRow.msg_id))) == ["m0", "m1"]
        assert (await session.scalars(select(OutboxRow.msg_id))).all() == []  # at commit
        queue_rows(
            session, InboxRow, {"consumer": "c", "msg_id": "m2", "processed_at": now}, visible=True
        )
        await session.execute(update(InboxRow).where(InboxRow.msg_id == "m2").values(consumer="d"))
    try:
        async with sessions() as session, session.begin():
            queue_rows(
                session,
                InboxRow,
                {"consumer": "c", "msg_id": "lost", "processed_at": now},
                visible=True,
            )
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    async with sessions() as session:
        rows = (await session.execute(select(InboxRow.consumer, InboxRow.msg_id))).all()
        assert sorted(rows) == [("c", "m0"), ("c", "m1"), ("d", "m2")]
        assert (await session.scalars(select(OutboxRow.msg_id))).all() == ["o1"]
    await engine.dispose()
