"""The change feed against the real PostgreSQL: writers take no lock, readers never skip.

Two writers commit in the other order than they took their positions; a reader polling in
between must not move its cursor past the change still uncommitted (it would never see it).
The horizon is cluster-wide (other schemas' writers hold it too), so the test waits for it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.projection import db
from services.projection.repository import Reader, UnitOfWork, refresh


async def settled(reader: Reader, cursor: int, count: int, timeout: float = 30.0) -> list[dict]:
    """The changes after `cursor` once the horizon passed `count` of them: it is the oldest
    transaction running in the whole database cluster, so other writers delay it a moment."""
    deadline = time.monotonic() + timeout
    while len(rows := await reader.changes(cursor, 10)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return rows


@pytest.fixture
async def feed(servers) -> AsyncIterator[tuple[AsyncEngine, Reader, int]]:
    """A schema of its own with opportunities a.ru:hr and b.ru:hr; its Reader and the feed's
    position before any change."""
    schema = f"feed_{uuid.uuid4().hex[:8]}"
    engine = db.create_engine(servers.database_url, schema, pool_size=3)
    try:
        await db.migrate(engine, schema)
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO opportunities (opportunity_id, account_id, solution) "
                                    "VALUES ('a.ru:hr', 'a.ru', 'hr'), ('b.ru:hr', 'b.ru', 'hr')"))
        reader = Reader(engine)
        yield engine, reader, await reader.last_change_seq()
    finally:
        await db.drop(engine, schema)
        await engine.dispose()


async def test_a_change_committed_late_is_not_skipped_by_a_reader(feed: tuple[AsyncEngine, Reader, int]) -> None:
    engine, reader, start = feed
    slow = await engine.connect()
    first = await slow.begin()
    await refresh(slow, {"a.ru:hr"})  # takes its position first, commits last
    async with engine.begin() as fast:
        await refresh(fast, {"b.ru:hr"})
    # b's change is committed, a's is not: the reader waits for both.
    assert await reader.changes(start, 10) == []
    await first.commit()
    await slow.close()
    rows = await settled(reader, start, 2)
    assert [r["opportunity_id"] for r in rows] == ["a.ru:hr", "b.ru:hr"]
    assert rows[0]["change_seq"] < rows[1]["change_seq"]
    assert await reader.last_change_seq() == rows[1]["change_seq"]
    assert await reader.changes(rows[1]["change_seq"], 10) == []
    # Writers never wait for each other: UnitOfWork has no lock to take.
    assert await UnitOfWork(engine).apply("c", {}, {}) == 0


async def test_two_refreshes_in_one_transaction_take_distinct_positions(feed: tuple[AsyncEngine, Reader, int]) -> None:
    engine, reader, start = feed
    async with engine.begin() as conn:  # as qualifying does after the batch's own refresh
        await refresh(conn, {"a.ru:hr", "b.ru:hr"})
        await refresh(conn, {"a.ru:hr"})
    rows = await settled(reader, start, 2)
    assert [r["opportunity_id"] for r in rows] == ["b.ru:hr", "a.ru:hr"]  # a moved again, after b
