"""Ids become visible in commit order, so a cursor reader never skips a late commit (docs/20_EVENT_JOURNAL.md)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import asyncpg
import pytest

from journal_api.journal.repository import query_events

INSERT = "INSERT INTO events (type) VALUES ('order.submitted') RETURNING id"


@pytest.fixture
async def three(db_url: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection]]:
    """Two writers and a reader on the same journal."""
    conns = [await asyncpg.connect(db_url) for _ in range(3)]
    yield conns[0], conns[1], conns[2]
    for conn in conns:
        await conn.close()


async def wait_until_waiting_on_lock(observer: asyncpg.Connection, pid: int) -> None:
    """Return once backend ``pid`` is blocked on a lock (30 s at most)."""
    for _ in range(3000):
        state = await observer.fetchval("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid)
        if state == "Lock":
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited on a lock")


async def test_second_writer_waits_until_first_commits(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """While one transaction holds an uncommitted event, another writer's insert waits; its id is larger."""
    first, second, observer = three
    transaction = first.transaction()
    await transaction.start()
    first_id = await first.fetchval(INSERT)
    second_insert = asyncio.create_task(second.fetchval(INSERT))
    await wait_until_waiting_on_lock(observer, second.get_server_pid())
    assert not second_insert.done()
    await transaction.commit()
    second_id = await asyncio.wait_for(second_insert, 30)
    assert (first_id, second_id) == (1, 2)


async def test_plain_sequence_lets_a_paging_reader_skip_a_late_commit(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """The failure the trigger prevents, shown on a scratch table with a plain sequence: row 1 is never read."""
    first, second, reader = three
    await reader.execute("CREATE TABLE scratch (id bigserial PRIMARY KEY, type text NOT NULL)")
    transaction = first.transaction()
    await transaction.start()
    await first.execute("INSERT INTO scratch (type) VALUES ('order.submitted')")  # takes id 1, not committed
    await second.execute("INSERT INTO scratch (type) VALUES ('order.submitted')")  # takes id 2, commits at once
    seen = [row["id"] for row in await reader.fetch("SELECT id FROM scratch WHERE id > 0 ORDER BY id")]
    cursor = seen[-1]
    await transaction.commit()
    seen += [row["id"] for row in await reader.fetch("SELECT id FROM scratch WHERE id > $1 ORDER BY id", cursor)]
    everything = [row["id"] for row in await reader.fetch("SELECT id FROM scratch ORDER BY id")]
    assert seen == [2]
    assert everything == [1, 2]


async def test_same_interleaving_on_the_journal_skips_nothing(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """With the journal's trigger the same interleaving delivers both rows, in order, to a paging reader."""
    first, second, reader = three
    transaction = first.transaction()
    await transaction.start()
    await first.fetchval(INSERT)
    second_insert = asyncio.create_task(second.fetchval(INSERT))
    await wait_until_waiting_on_lock(reader, second.get_server_pid())
    page = await query_events(reader, limit=10, cursor=0)
    assert (page.events, page.cursor, page.head) == ([], 0, 0)
    await transaction.commit()
    await asyncio.wait_for(second_insert, 30)
    page = await query_events(reader, limit=10, cursor=page.cursor)
    assert [event.id for event in page.events] == [1, 2]


async def test_overlapping_writers_and_a_paging_reader_agree_exactly(db_url: str) -> None:
    """8 writers with sleeps inside transactions and 10% rollbacks: the reader gets every committed event once."""
    rng = random.Random(20261126)
    committed: list[int] = []
    writers_done = asyncio.Event()

    async def writer(n: int) -> None:
        conn = await asyncpg.connect(db_url)
        try:
            for _ in range(25):
                await asyncio.sleep(rng.uniform(0, 0.003))
                transaction = conn.transaction()
                await transaction.start()
                ids = [await conn.fetchval(INSERT) for _ in range(rng.randint(1, 3))]
                await asyncio.sleep(rng.uniform(0, 0.004))  # hold the transaction open, as a slow writer would
                if rng.random() < 0.1:
                    await transaction.rollback()
                else:
                    await transaction.commit()
                    committed.extend(ids)
        finally:
            await conn.close()

    async def reader() -> list[int]:
        conn = await asyncpg.connect(db_url)
        delivered: list[int] = []
        cursor = 0
        try:
            while True:
                finished = writers_done.is_set()  # read before paging, so the last pass sees every commit
                page = await query_events(conn, limit=7, cursor=cursor)
                delivered += [event.id for event in page.events]
                cursor = page.cursor
                if finished and len(page.events) < 7:
                    return delivered
                await asyncio.sleep(0)
        finally:
            await conn.close()

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(n) for n in range(8)))
    writers_done.set()
    delivered = await asyncio.wait_for(reading, 120)
    assert len(committed) > 300
    assert len(delivered) == len(set(delivered))
    assert delivered == sorted(delivered)
    assert delivered == sorted(committed)
