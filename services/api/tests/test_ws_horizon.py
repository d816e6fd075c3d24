"""The stream stops at the delivery horizon: a later commit waits for an older open transaction, a rollback
releases it without a NOTIFY, and operators see a held-back stream (docs/50_OPERATIONS.md#a-held-back-stream)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from asyncpg.transaction import Transaction

from journal_api.journal.repository import read_new
from journal_api.stream.hold import YOUNG_S, follow_hold

from .conftest import TOKEN, Client, Connect, Journal, Running, StartServer
from .test_operations import scrape
from .test_ws_recovery import until

INSERT = "INSERT INTO events (type, payload) VALUES ('order.submitted', $1::jsonb) RETURNING id"


async def frames_before_pong(client: Client) -> list[dict[str, Any]]:
    """Every frame the server wrote before it answered a ping sent now (frames arrive in the order written)."""
    await client.send({"op": "ping"})
    frames = []
    while (frame := await client.frame())["op"] != "pong":
        frames.append(frame)
    return frames


async def held_rows(server: Running, rows: int) -> bool:
    hold = server.hub.hold
    return hold is not None and hold.rows == rows


async def one_held_back(server: Running, older: asyncpg.Connection, later: asyncpg.Connection) -> Transaction:
    """``older`` inserts event 1 and stays open; ``later`` commits event 2; returns once the hub sees 2 held back
    (the caller ends ``older``'s transaction)."""
    transaction = older.transaction()
    await transaction.start()
    assert await older.fetchval(INSERT, '{"n": 1}') == 1
    assert await later.fetchval(INSERT, '{"n": 2}') == 2
    await until(lambda: held_rows(server, 1), "the hub sees one committed event held back")
    return transaction


@pytest.fixture
async def writers(db_url: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """An older writer that will hold its transaction open, and a later one."""
    older, later = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    yield older, later
    await older.close()
    await later.close()


async def test_a_later_commit_waits_for_the_older_open_transaction(
    writers: tuple[asyncpg.Connection, asyncpg.Connection], journal_server: StartServer, connect: Connect
) -> None:
    """A holds id 1 open while B commits id 2: the client gets nothing until A commits, then 1 and 2 in order."""
    older, later = writers
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        transaction = await one_held_back(server, older, later)
        assert [frame["op"] for frame in await frames_before_pong(client)] == ["live"]
        await transaction.commit()
        events = await client.events_through(2)
        assert [(event["id"], event["payload"]) for event in events] == [("1", {"n": 1}), ("2", {"n": 2})]


async def test_a_rollback_releases_the_stream_without_a_notify(
    writers: tuple[asyncpg.Connection, asyncpg.Connection], journal_server: StartServer, connect: Connect
) -> None:
    """A rolls back (no NOTIFY comes): the hub, polling while held back, delivers B's event."""
    older, later = writers
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        transaction = await one_held_back(server, older, later)
        await transaction.rollback()
        assert [event["id"] for event in await client.events_through(2)] == ["2"]
        await until(lambda: asyncio.sleep(0, server.hub.hold is None), "the hold is over")


async def test_a_long_hold_is_logged_once_by_holder_and_shown_on_metrics(
    db_url: str, journal_server: StartServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """Past JOURNAL_HELD_LOG_S the server names the holder's pid and application_name once, never its query;
    /metrics shows how long delivery has waited and how many committed events wait."""
    caplog.set_level(logging.WARNING, logger="journal_api.hub")
    older = await asyncpg.connect(db_url, server_settings={"application_name": "engine-order-path"})
    later = await asyncpg.connect(db_url)
    try:
        async with journal_server(held_log_s=0.2) as server:
            transaction = older.transaction()
            await transaction.start()
            await older.fetchval(INSERT + " -- query-text-marker", '{"venue": "query-text-marker"}')
            await later.fetchval(INSERT, "{}")
            await later.fetchval(INSERT, "{}")

            def held_lines() -> list[str]:
                return [r.getMessage() for r in caplog.records if r.getMessage().startswith("delivery is held back")]

            await until(lambda: asyncio.sleep(0, len(held_lines()) == 1), "one held-back line")
            (line,) = held_lines()
            assert line.startswith(
                f"delivery is held back at 0 by pid {older.get_server_pid()} "
                "(application_name 'engine-order-path', transaction open "
            )
            assert line.endswith("; 2 committed events wait for it to end")
            assert "query-text-marker" not in line
            figures = await scrape(server.base)
            assert figures[("journal_held_rows", ())] == 2
            assert figures[("journal_held_seconds", ())] > 0
            await transaction.commit()

            async def released() -> bool:
                figures = await scrape(server.base)
                return figures[("journal_held_rows", ())] == 0 and figures[("journal_held_seconds", ())] == 0

            await until(released, "the hold is over on /metrics")
            assert len(held_lines()) == 1
    finally:
        await older.close()
        await later.close()


async def test_a_young_hold_costs_no_count_and_one_that_stays_is_counted(
    db_url: str, writers: tuple[asyncpg.Connection, asyncpg.Connection]
) -> None:
    """Under load a writer is in flight at nearly every read and the oldest floor changes with each: a hold younger
    than YOUNG_S is followed without a statement; once the same transaction has held that long, its rows are
    counted."""
    older, later = writers
    reader = await asyncpg.connect(db_url)
    try:
        transaction = older.transaction()
        await transaction.start()
        await older.fetchval(INSERT, "{}")
        await later.fetchval(INSERT, "{}")
        page = await read_new(reader, limit=10, cursor=0)
        hold = await follow_hold(None, reader, page, log_after_s=60)
        assert hold is not None
        assert (hold.floor, hold.rows, hold.counted_at) == (0, 0, None)
        hold.since -= YOUNG_S  # as if the hub had first seen this floor that long ago
        assert await follow_hold(hold, reader, page, log_after_s=60) is hold
        assert hold.rows == 1
        await transaction.rollback()
    finally:
        await reader.close()


def test_a_cached_sequence_stops_the_server_at_start(db_url: str, journal: Journal) -> None:
    """The sequence must stay CACHE 1: `journal serve` refuses to start on a cached one, saying how to fix it."""

    async def cache() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("ALTER SEQUENCE events_id_seq CACHE 20")
        finally:
            await conn.close()

    asyncio.run(cache())
    with journal("serve", "--port", "0", env={"DATABASE_URL": db_url, "JOURNAL_TOKENS": TOKEN}) as cli:
        assert cli.process.wait(timeout=60) == 3
        output = cli.process.communicate()[0]
    assert "events_id_seq has CACHE 20" in output
    assert "run ALTER SEQUENCE events_id_seq CACHE 1" in output
