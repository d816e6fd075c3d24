"""/ws streams the journal: exact frames, replay then live, resume, filters, heartbeats (docs/30_WS_PROTOCOL.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from .conftest import Client, Connect, StartServer, until_asleep, write, write_without_notify

TRADE = {
    "op": "event",
    "cursor": "1",
    "event": {
        "id": "1",
        "ts": "2026-11-26T09:14:03.120482+00:00",
        "type": "trade.filled",
        "channel": "trades",
        "level": "info",
        "public_safe": False,
        "symbol": "BTC-USD",
        "trade_id": "T-000042",
        "payload": {"side": "buy", "quantity": 0.5, "price": 97012.5},
    },
}


async def epoch_of(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT epoch FROM journal_meta"))


async def frames_until(client: Client, op: str, cursor: str | None = None) -> list[dict[str, Any]]:
    """Frames up to and including the first ``op`` frame (with ``cursor``, when given)."""
    frames = [await client.frame()]
    while not (frames[-1]["op"] == op and cursor in (None, frames[-1].get("cursor"))):
        frames.append(await client.frame())
    return frames


async def test_plain_sql_rows_arrive_with_exactly_these_frames(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """ready, live, then one event frame per committed row, every id and cursor a decimal string."""
    async with journal_server() as server, connect(server.url) as client:
        ready = await client.subscribe(cursor="0")
        assert ready == {"op": "ready", "epoch": await epoch_of(conn), "cursor": "0", "head": "0"}
        assert await client.frame() == {"op": "live", "cursor": "0"}
        await conn.execute(
            "INSERT INTO events (ts, type, public_safe, symbol, trade_id, payload) VALUES "
            "('2026-11-26T09:14:03.120482Z', 'trade.filled', false, 'BTC-USD', 'T-000042', "
            '\'{"side": "buy", "quantity": 0.5, "price": 97012.5}\')'
        )
        assert await client.frame() == TRADE
        await conn.execute(
            "INSERT INTO events (ts, type, level) VALUES ('2026-11-26T10:00:00Z', 'risk.halt', 'critical')"
        )
        second = await client.frame()
        assert second["event"]["ts"] == "2026-11-26T10:00:00.000000+00:00"
        assert (second["cursor"], second["event"]["channel"], second["event"]["level"]) == ("2", "events", "critical")
        ids = await write(conn, 5)
        assert [event["id"] for event in await client.events_through(ids[-1])] == ["3", "4", "5", "6", "7"]


async def test_cursor_zero_replays_everything_then_goes_live(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """The backlog comes first, in order, then one live frame at the position reached."""
    await write(conn, 3)
    async with journal_server() as server, connect(server.url) as client:
        assert (await client.subscribe(cursor="0"))["head"] == "3"
        frames = [await client.frame() for _ in range(4)]
    assert [(frame["op"], frame["cursor"]) for frame in frames] == [
        ("event", "1"),
        ("event", "2"),
        ("event", "3"),
        ("live", "3"),
    ]


@pytest.mark.parametrize("cursor", ["2", 2])
async def test_cursor_n_sends_only_events_after_n(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect, cursor: object
) -> None:
    """A decimal string or a JSON integer: every event with a larger id, nothing before."""
    await write(conn, 4)
    async with journal_server() as server, connect(server.url) as client:
        assert (await client.subscribe(cursor=cursor))["cursor"] == "2"
        frames = [await client.frame() for _ in range(3)]
    assert [(frame["op"], frame["cursor"]) for frame in frames] == [("event", "3"), ("event", "4"), ("live", "4")]


async def test_no_cursor_means_live_from_the_head(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Without a cursor the client starts at the head: no backlog, only what commits after."""
    await write(conn, 3)
    async with journal_server() as server, connect(server.url) as client:
        ready = await client.subscribe(cursor=None)
        assert (ready["cursor"], ready["head"]) == ("3", "3")
        assert await client.frame() == {"op": "live", "cursor": "3"}
        await write(conn, 1)
        assert (await client.frame())["cursor"] == "4"


async def test_resume_sends_exactly_the_events_missed(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Connect, receive, disconnect, more events commit, reconnect with the cursor: exactly the new events."""
    epoch = await epoch_of(conn)
    async with journal_server() as server:
        first = await write(conn, 3)
        async with connect(server.url) as client:
            await client.subscribe(cursor="0")
            seen = await client.events_through(first[-1])
        cursor = seen[-1]["id"]
        missed = await write(conn, 4)
        async with connect(server.url) as client:
            ready = await client.subscribe(cursor=cursor, epoch=epoch)
            frames = await frames_until(client, "live")
            after = await write(conn, 2)
            live = await client.events_through(after[-1])
    assert (ready["cursor"], ready["head"]) == ("3", "7")
    assert [(frame["op"], frame["cursor"]) for frame in frames] == [
        *[("event", str(n)) for n in missed],
        ("live", "7"),
    ]
    assert [event["id"] for event in live] == ["8", "9"]


async def test_handoff_from_backlog_to_live_loses_and_repeats_nothing(
    conn: asyncpg.Connection, db_url: str, journal_server: StartServer, connect: Connect
) -> None:
    """While a client replays a large backlog in small pages, writers keep committing and the shared buffer keeps
    evicting: the client still gets every event exactly once, in order, and one live frame."""
    await write(conn, 300)

    async def keep_writing() -> list[int]:
        writer = await asyncpg.connect(db_url)
        try:
            ids: list[int] = []
            for n in range(60):
                ids += await write(writer, 1 + n % 5)
                await asyncio.sleep(0)
            return ids
        finally:
            await writer.close()

    async with journal_server(page_size=7, buffer_rows=20) as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        written = await keep_writing()
        frames = await frames_until(client, "event", str(written[-1]))
        if "live" not in [frame["op"] for frame in frames]:  # caught up with the last page: live comes next
            frames += await frames_until(client, "live")
    ids = [int(frame["cursor"]) for frame in frames if frame["op"] == "event"]
    assert ids == list(range(1, written[-1] + 1))
    assert [frame["op"] for frame in frames].count("live") == 1


async def test_a_live_client_that_falls_behind_the_buffer_reads_pages(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A burst larger than the shared buffer is read from the database: nothing is lost."""
    async with journal_server(page_size=3, buffer_rows=5) as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        assert (await client.frame())["op"] == "live"
        ids = await write(conn, 50)
        events = await client.events_through(ids[-1])
    assert [int(event["id"]) for event in events] == ids


@pytest.mark.parametrize(
    ("event_filter", "expected"),
    [
        ({"channels": ["trades"]}, ["trade.filled"]),
        ({"types": ["order.*"]}, ["order.submitted", "order.rejected"]),
        ({"symbols": ["ETH-USD"], "min_level": "warn"}, ["order.rejected"]),
        ({"channels": ["events", "snapshots"], "trade_ids": ["T-1"]}, ["order.submitted"]),
    ],
)
async def test_filters_select_the_same_events_in_replay_and_live(
    conn: asyncpg.Connection,
    journal_server: StartServer,
    connect: Connect,
    event_filter: dict[str, Any],
    expected: list[str],
) -> None:
    """The backlog (filtered in SQL) and the live tail (filtered in Python) select exactly the same events; a
    heartbeat at the last id proves nothing else was coming."""

    async def write_batch() -> int:
        await write(conn, type="order.submitted", symbol="BTC-USD", trade_id="T-1")
        await write(conn, type="order.rejected", level="error", symbol="ETH-USD", trade_id="T-2")
        await write(conn, type="trade.filled", symbol="BTC-USD", trade_id="T-3")
        return (await write(conn, type="snapshot.portfolio"))[-1]

    await write_batch()
    async with journal_server(heartbeat_s=0.2) as server, connect(server.url) as client:
        await client.subscribe(cursor="0", filter=event_filter)
        replayed = await frames_until(client, "live")
        last = await write_batch()
        live = await frames_until(client, "heartbeat", str(last))
    assert [frame["event"]["type"] for frame in replayed if frame["op"] == "event"] == expected
    assert [frame["event"]["type"] for frame in live if frame["op"] == "event"] == expected


async def test_heartbeat_cursor_advances_for_a_filtered_client(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Events that do not match still move the heartbeat's cursor, so a filtered client resumes past them."""
    async with journal_server(heartbeat_s=0.2) as server, connect(server.url) as client:
        await client.subscribe(cursor="0", filter={"channels": ["trades"]})
        assert await client.frame() == {"op": "live", "cursor": "0"}
        await write(conn, 5, type="order.submitted")
        beat = (await frames_until(client, "heartbeat", "5"))[-1]
        assert (beat["cursor"], beat["head"]) == ("5", "5")
        assert beat["ts"].endswith("+00:00")
        await write(conn, type="trade.filled")
        frames = await frames_until(client, "event")
    assert [frame["op"] for frame in frames[:-1]] == ["heartbeat"] * (len(frames) - 1)
    assert frames[-1]["cursor"] == "6"


async def test_ping_gets_pong(journal_server: StartServer, connect: Connect) -> None:
    """After subscribing, {"op":"ping"} (in any JSON spelling) is answered with {"op":"pong"}."""
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe()
        assert (await client.frame())["op"] == "live"
        await client.send('{"op":"ping"}')
        assert await client.frame() == {"op": "pong"}
        await client.send('{ "op" : "ping" }')
        assert await client.frame() == {"op": "pong"}


async def test_several_clients_each_get_every_event(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Clients share one fetch per wake-up, and each receives every event."""
    async with (
        journal_server() as server,
        connect(server.url) as a,
        connect(server.url) as b,
        connect(server.url) as c,
    ):
        for client in (a, b, c):
            await client.subscribe(cursor="0")
        ids = await write(conn, 20)
        for client in (a, b, c):
            assert [int(event["id"]) for event in await client.events_through(ids[-1])] == ids


async def test_live_never_precedes_events_that_existed_at_subscribe(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Even when the hub has not read the newest events yet (here: no NOTIFY reaches it), a subscriber gets
    every event up to the head its ready frame announced before the live frame."""
    async with journal_server(check_interval_s=600) as server:
        await until_asleep(server.hub)
        ids = await write_without_notify(conn, 4)
        assert server.hub.head == 0
        async with connect(server.url) as client:
            ready = await client.subscribe(cursor="0")
            frames = await frames_until(client, "live")
    assert ready["head"] == "4"
    assert [(frame["op"], frame["cursor"]) for frame in frames] == [
        *[("event", str(n)) for n in ids],
        ("live", "4"),
    ]
