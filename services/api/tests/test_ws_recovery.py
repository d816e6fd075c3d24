"""Nothing is lost through listener loss, lost notifications, Postgres and server restarts, or concurrency
(docs/30_WS_PROTOCOL.md#how-the-server-keeps-the-promise)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest
import websockets

from journal_api.journal import repository
from journal_api.journal.repository import FramePage
from journal_api.stream import hub as hub_module
from journal_api.stream.listener import LISTENER_NAME

from .conftest import (
    TOKEN,
    Client,
    Connect,
    Journal,
    Running,
    StartServer,
    until_asleep,
    write,
    write_without_notify,
)

if TYPE_CHECKING:
    from conftest import PostgresOutage  # the root conftest's fixture type


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60) -> None:
    """Poll ``condition`` until it holds (``timeout_s`` at most)."""
    for _ in range(int(timeout_s * 100)):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def terminate_listener(conn: asyncpg.Connection) -> None:
    """Kill the hub's LISTEN connection from the database side."""
    killed = await conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", LISTENER_NAME
    )
    assert killed == 1


async def ids_received(client: Client, last_id: int) -> list[int]:
    return [int(event["id"]) for event in await client.events_through(last_id)]


async def test_killed_listener_loses_nothing(
    conn: asyncpg.Connection, db_url: str, journal_server: StartServer, connect: Connect
) -> None:
    """pg_terminate_backend on the LISTEN connection while events are written: every event still arrives, once."""
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        writer = await asyncpg.connect(db_url)
        try:
            first = await write(writer, 30)
            await terminate_listener(conn)
            rest = [n for _ in range(30) for n in await write(writer, 2)]
        finally:
            await writer.close()
        assert await ids_received(client, rest[-1]) == first + rest

        async def reconnected() -> bool:
            return server.hub.listener_connects == 2

        await until(reconnected, "the hub reconnected its listener")


async def test_listener_that_stops_answering_is_replaced(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """The periodic re-read notices a listener that no longer works even without a termination callback."""
    async with journal_server(check_interval_s=0.05) as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        await conn.execute("ALTER TABLE journal_meta RENAME TO journal_meta_away")  # reading now fails

        async def replaced() -> bool:
            return server.hub.listener_connects >= 2

        await until(replaced, "the hub replaced its listener")
        await conn.execute("ALTER TABLE journal_meta_away RENAME TO journal_meta")
        ids = await write(conn, 3)
        assert await ids_received(client, ids[-1]) == ids


async def test_lost_notification_costs_latency_not_events(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """An event committed without any NOTIFY still arrives, from the periodic re-read."""
    async with journal_server(check_interval_s=0.1) as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        await until_asleep(server.hub)
        ids = await write_without_notify(conn, 2)
        assert await ids_received(client, ids[-1]) == ids


async def test_reset_journal_restarts_sessions_and_refuses_old_cursors(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A changed epoch (reset or restored journal) closes live sessions with 1012; resuming with the old epoch is
    refused with 4409, so no client trusts a cursor from the old journal."""
    old_epoch = str(await conn.fetchval("SELECT epoch FROM journal_meta"))
    async with journal_server(check_interval_s=0.05) as server:
        async with connect(server.url) as client:
            await client.subscribe(cursor="0")
            await conn.execute("UPDATE journal_meta SET epoch = gen_random_uuid()")
            code, _ = await client.closed()
        assert code == 1012
        async with connect(server.url) as client:
            await client.send({"op": "subscribe", "token": TOKEN, "cursor": "0", "epoch": old_epoch})
            code, frames = await client.closed()
        assert code == 4409
        assert frames[0]["code"] == "epoch_mismatch"
        assert server.hub.epoch == str(await conn.fetchval("SELECT epoch FROM journal_meta"))


async def test_postgres_restart_mid_stream_loses_nothing(
    db_url: str,
    journal_server: StartServer,
    connect: Connect,
    postgres_outage: PostgresOutage,
) -> None:
    """Postgres stops and starts again under a live stream: the server recovers by itself, a tailing client gets
    every event, a client subscribing meanwhile is told to come back (1011), and resuming then is exact."""
    writer = await asyncpg.connect(db_url)
    before = await write(writer, 5)
    await writer.close()
    async with journal_server(check_interval_s=0.1) as server, connect(server.url) as tailing:
        await tailing.subscribe(cursor="0")
        assert await ids_received(tailing, before[-1]) == before
        await postgres_outage.begin()
        async with connect(server.url) as late:
            await late.send({"op": "subscribe", "token": TOKEN, "cursor": "0"})
            code, frames = await late.closed()
        assert (code, frames[-1]["code"]) == (1011, "internal_error")
        await postgres_outage.end()
        writer = await asyncpg.connect(db_url)
        try:
            after = await write(writer, 5)
        finally:
            await writer.close()
        assert await ids_received(tailing, after[-1]) == after
        async with connect(server.url) as resumed:
            await resumed.subscribe(cursor=str(before[-1]))
            assert await ids_received(resumed, after[-1]) == after


async def test_server_restart_resumes_exactly_and_shutdown_leaves_nothing_behind(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Shutdown closes sessions with 1012 and leaves no task; a new server resumes the client from its cursor."""
    first = await write(conn, 4)
    async with journal_server() as server:
        client_connection = connect(server.url)
        client = await client_connection.__aenter__()
        await client.subscribe(cursor="0")
        cursor = (await client.events_through(first[-1]))[-1]["id"]
    code, _ = await client.closed()
    await client_connection.__aexit__(None, None, None)
    assert code == 1012
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []
    missed = await write(conn, 3)
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe(cursor=cursor)
        assert await ids_received(client, missed[-1]) == missed


async def test_clients_of_two_servers_in_one_process_each_get_everything(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Two servers (two hubs) share one journal: a client of either receives every event."""
    async with journal_server() as one, journal_server() as two, connect(one.url) as a, connect(two.url) as b:
        await a.subscribe(cursor="0")
        await b.subscribe(cursor="0")
        ids = await write(conn, 10)
        assert await ids_received(a, ids[-1]) == ids
        assert await ids_received(b, ids[-1]) == ids


async def test_writers_with_rollbacks_and_clients_that_drop_and_resume(
    db_url: str, journal_server: StartServer, connect: Connect
) -> None:
    """8 writers hold transactions open and roll back 10% of them while 3 clients keep dropping and resuming:
    each client receives every committed event exactly once, in order."""
    rng = random.Random(20261126)
    committed: list[int] = []
    done = asyncio.Event()

    async def writer() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            for _ in range(20):
                transaction = conn.transaction()
                await transaction.start()
                ids = await write(conn, rng.randint(1, 3))
                await asyncio.sleep(rng.uniform(0, 0.004))  # inside the transaction, as a slow writer would
                if rng.random() < 0.1:
                    await transaction.rollback()
                else:
                    await transaction.commit()
                    committed.extend(ids)
        finally:
            await conn.close()

    async def resuming_client(server: Running, seed: int) -> list[int]:
        drops = random.Random(seed)
        received: list[int] = []
        cursor = "0"
        while True:
            # max_queue=None: a client that stops reading with more than its queue's worth of frames in flight
            # (writers no longer wait for each other, so bursts are dense) would stop reading its socket, miss
            # the server's close frame and wait out its close timeout (10 s) at every drop.
            async with connect(server.url, max_queue=None) as client:
                await client.subscribe(cursor=cursor)
                for _ in range(drops.randint(5, 40)):  # then drop the connection and resume
                    finished = done.is_set()
                    frame = await client.frame()
                    if frame["op"] == "event":
                        received.append(int(frame["cursor"]))
                    cursor = frame["cursor"]
                    if finished and frame["op"] == "heartbeat" and int(cursor) >= max(committed):
                        return received

    async with journal_server(page_size=13, buffer_rows=50, heartbeat_s=0.1) as server:
        clients = [asyncio.create_task(resuming_client(server, seed)) for seed in range(3)]
        await asyncio.gather(*(writer() for _ in range(8)))
        done.set()
        results = await asyncio.wait_for(asyncio.gather(*clients), 120)
    assert len(committed) > 200
    for received in results:
        assert received == sorted(committed)


async def test_session_that_drops_while_replaying_ends_quietly(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A client that disconnects in the middle of a replay costs the server nothing but its session."""
    await write(conn, 2000)
    async with journal_server(page_size=50) as server:
        async with connect(server.url) as client:
            await client.subscribe(cursor="0")
            await client.frame()

        async def gone() -> bool:
            sessions: int = server.app.state.journal.metrics.connections
            return sessions == 0

        await until(gone, "the session ended")
        async with connect(server.url) as client:
            await client.subscribe(cursor="1999")
            assert await ids_received(client, 2000) == [2000]


async def test_failed_read_is_retried_until_it_works(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """When reading new events fails, the hub logs it, backs off and retries; the events then arrive."""
    caplog.set_level(logging.WARNING, logger="journal_api")
    async with journal_server(check_interval_s=0.05) as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        await conn.execute("ALTER TABLE events RENAME TO events_away")

        async def failed() -> bool:
            return any(r.getMessage().startswith("reading new events failed") for r in caplog.records)

        await until(failed, "a failed read was logged")
        await conn.execute("ALTER TABLE events_away RENAME TO events")
        ids = await write(conn, 3)
        assert await ids_received(client, ids[-1]) == ids


async def test_burst_larger_than_a_fetch_arrives_whole(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """2,500 events in one transaction take several fetches; every one arrives, in order."""
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe(cursor=None)
        ids = await write(conn, 2500)
        assert await ids_received(client, ids[-1]) == ids


async def test_shutdown_while_postgres_is_down_is_clean(
    journal_server: StartServer, connect: Connect, postgres_outage: PostgresOutage
) -> None:
    """A server told to stop while its database is away (its hub still reconnecting) stops at once, closing
    clients with 1012."""
    running = journal_server(check_interval_s=0.05)
    server = await running.__aenter__()
    async with connect(server.url) as client:
        await client.subscribe(cursor="0")
        connects = server.hub.listener_connects
        await postgres_outage.begin()
        try:

            async def reconnecting() -> bool:
                return server.hub._listener.connection is None and server.hub.listener_connects == connects

            await until(reconnecting, "the hub was trying to reconnect")
            await running.__aexit__(None, None, None)
        finally:
            await postgres_outage.end()
        code, _ = await client.closed()
    assert code == 1012


async def test_clients_of_two_server_processes_each_get_everything(
    conn: asyncpg.Connection, db_url: str, journal: Journal, connect: Connect
) -> None:
    """Two `journal serve` processes on one database: a client of either receives every event."""
    env = {"DATABASE_URL": db_url, "JOURNAL_TOKENS": TOKEN}
    with journal("serve", "--port", "0", env=env) as one, journal("serve", "--port", "0", env=env) as two:
        urls = []
        for process in (one, two):
            port = (await asyncio.to_thread(process.wait_for_line, r"Uvicorn running on http://127\.0\.0\.1:(\d+)"))[1]
            urls.append(f"ws://127.0.0.1:{port}/ws")
        async with connect(urls[0]) as a, connect(urls[1]) as b:
            await a.subscribe(cursor="0")
            await b.subscribe(cursor="0")
            ids = await write(conn, 10)
            assert await ids_received(a, ids[-1]) == ids
            assert await ids_received(b, ids[-1]) == ids
        assert one.interrupt() == 0
        assert two.interrupt() == 0


def deep_payload(levels: int) -> str:
    return '{"x": ' + '{"n": ' * (levels - 1) + "1" + "}" * (levels - 1) + "}"


async def test_a_deeply_nested_row_never_stops_the_stream(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Plain SQL can store nesting that encoders choke on; that row arrives as a placeholder, live and in replay,
    and every event after it still arrives."""
    placeholder = {"unreadable_payload": "this payload cannot be decoded as JSON by readers; read it with SQL"}
    async with journal_server() as server, connect(server.url) as live:
        await live.subscribe(cursor="0")
        await conn.execute("INSERT INTO events (type, payload) VALUES ('decision.made', $1::jsonb)", deep_payload(300))
        ids = await write(conn, 2)
        events = await live.events_through(ids[-1])
        async with connect(server.url) as replaying:
            await replaying.subscribe(cursor="0")
            replayed = await replaying.events_through(ids[-1])
    for received in (events, replayed):
        assert [event["id"] for event in received] == ["1", "2", "3"]
        assert received[0]["payload"] == placeholder


async def test_a_fault_while_reading_is_logged_and_retried(
    conn: asyncpg.Connection,
    journal_server: StartServer,
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug on the hub's read path (simulated: reading fails once) is logged with its traceback and retried on
    the same connection; the event is delivered once, and live delivery goes on."""
    real_read = repository.read_new
    failures: list[Exception | None] = [ZeroDivisionError("a bug"), None]  # the first read, at start, works

    async def flaky_read(db: asyncpg.Connection, **kwargs: Any) -> FramePage:
        if failures and (failure := failures.pop()) is not None:
            raise failure
        return await real_read(db, **kwargs)

    monkeypatch.setattr(hub_module, "read_new", flaky_read)
    caplog.set_level(logging.WARNING, logger="journal_api")
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        ids = await write(conn, 3)
        assert await ids_received(client, ids[-1]) == ids
        assert server.hub.listener_connects == 1
    [fault] = [r for r in caplog.records if r.getMessage() == "reading new events hit a fault"]
    assert fault.exc_info is not None
    assert fault.exc_info[0] is ZeroDivisionError


async def test_epoch_rotated_while_events_flow_is_noticed(
    conn: asyncpg.Connection, db_url: str, journal_server: StartServer, connect: Connect
) -> None:
    """Notifications keep coming, yet the rotated epoch is noticed: live sessions restart (1012), and a new
    subscriber is served under the new epoch without being restarted again."""
    stop = asyncio.Event()

    async def keep_writing() -> None:
        writer = await asyncpg.connect(db_url)
        try:
            while not stop.is_set():
                await write(writer)
                await asyncio.sleep(0.01)
        finally:
            await writer.close()

    async with journal_server(check_interval_s=0.1) as server:
        writing = asyncio.create_task(keep_writing())
        try:
            async with connect(server.url) as client:
                await client.subscribe(cursor="0")
                await conn.execute("UPDATE journal_meta SET epoch = gen_random_uuid()")
                code, _ = await client.closed()
            assert code == 1012
            new_epoch = str(await conn.fetchval("SELECT epoch FROM journal_meta"))
            assert server.hub.epoch == new_epoch
            async with connect(server.url) as client:
                ready = await client.subscribe(cursor=None)
                assert ready["epoch"] == new_epoch
                ids = await write(conn, 2)  # the background writer's ids may fall between these two
                received = await ids_received(client, ids[-1])
                assert [n for n in received if n in ids] == ids
        finally:
            stop.set()
            await writing


async def test_subscriber_who_sees_a_reset_first_is_told_to_come_back(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """When a subscribe reads an epoch the hub has not noticed yet, the client is closed 1012 before any frame
    and the hub re-reads at once; the next subscribe is served under the new epoch."""
    async with journal_server(check_interval_s=600) as server:
        await until_asleep(server.hub)  # and so reads only when woken
        await conn.execute("UPDATE journal_meta SET epoch = gen_random_uuid()")
        new_epoch = str(await conn.fetchval("SELECT epoch FROM journal_meta"))
        async with connect(server.url) as client:
            await client.send({"op": "subscribe", "token": TOKEN, "cursor": "0"})
            code, frames = await client.closed()
        assert (code, frames) == (1012, [])

        async def reset() -> bool:
            return server.hub.epoch == new_epoch

        await until(reset, "the hub noticed the new epoch")
        async with connect(server.url) as client:
            assert (await client.subscribe(cursor="0"))["epoch"] == new_epoch


async def test_journal_restored_without_rotating_the_epoch_restarts_everyone(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """If the head goes back (a restore without a new epoch), ids will be reused: live sessions restart, and a
    cursor beyond the restored head is refused, so nobody skips the reused ids."""
    ids = await write(conn, 10)
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        await client.events_through(ids[-1])
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        # What restoring an older backup looks like: the rows after 5 are gone and the sequence is back at 5.
        await conn.execute("DELETE FROM events WHERE id > 5")
        await conn.execute("SELECT setval('events_id_seq', 5)")
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
        await write(conn)  # wakes the hub
        code, _ = await client.closed()
        assert code == 1012
        async with connect(server.url) as resumed:
            await resumed.send({"op": "subscribe", "token": TOKEN, "cursor": "10"})
            code, frames = await resumed.closed()
        assert (code, frames[0]["code"]) == (4409, "cursor_ahead")


async def test_shutdown_finishes_with_a_stalled_client_connected(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """A client that stopped reading cannot hold the server: it is dropped and shutdown completes."""
    payload = json.dumps({"blob": "x" * 4000})
    running = journal_server(send_timeout_s=0.3)
    server = await running.__aenter__()
    async with websockets.connect(server.url, max_queue=1, open_timeout=30) as socket:
        await Client(socket).subscribe(cursor=None)
        for _ in range(40):  # ~20 MB: the client's and the kernel's buffers fill, the server's sends block
            await write(conn, 120, payload=payload)
        await asyncio.wait_for(running.__aexit__(None, None, None), 60)


async def test_readyz_fails_while_postgres_is_down_and_recovers(
    journal_server: StartServer, postgres_outage: PostgresOutage
) -> None:
    """/readyz answers 503 naming the database and the listener while Postgres is down (/healthz stays 200), and
    200 again once the hub has reconnected."""
    async with journal_server(check_interval_s=0.1) as server, httpx.AsyncClient(base_url=server.base) as http:
        assert (await http.get("/readyz")).status_code == 200
        await postgres_outage.begin()
        try:

            async def unavailable() -> bool:
                response = await http.get("/readyz")
                return response.status_code == 503 and response.json() == {
                    "status": "unavailable",
                    "failing": ["database", "listener"],
                }

            await until(unavailable, "/readyz reported the database and the listener down")
            assert (await http.get("/healthz")).status_code == 200
        finally:
            await postgres_outage.end()

        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await until(ready, "/readyz was ready again")
