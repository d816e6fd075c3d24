"""What monitoring reads off a running server: /metrics and the logs (docs/50_OPERATIONS.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from journal_api.stream.logs import JsonFormatter, TextFormatter
from journal_api.stream.metrics import LAG_BUCKETS_S, Metrics

from .conftest import TOKEN, Client, Connect, Journal, StartServer, free_port, session_closes, stalled_client, write

Figures = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(base: str, token: str | None = TOKEN) -> Figures:
    """Every sample of /metrics, by name and labels."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Until ``check()`` is true (60 s at most): for figures read from the server over HTTP."""
    async with asyncio.timeout(60):
        while not await check():  # noqa: ASYNC110 - the condition lives in another program's answers
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789"])
async def test_metrics_need_the_operator_token(journal_server: StartServer, token: str | None) -> None:
    """Without a valid bearer token /metrics is 401 and says what to send."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with journal_server() as server, httpx.AsyncClient(base_url=server.base) as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "error": "unauthorized",
        "message": 'send "Authorization: Bearer <credential with metrics>"',
    }


async def test_metrics_can_be_made_public(journal_server: StartServer) -> None:
    """JOURNAL_METRICS_PUBLIC opens /metrics to anyone who reaches the port."""
    async with journal_server(metrics_public=True) as server:
        figures = await scrape(server.base, token=None)
    assert figures[("journal_sessions", ())] == 0
    assert ("process_cpu_seconds_total", ()) in figures
    assert any(name == "python_info" for name, _ in figures)


async def test_metrics_follow_sessions_replays_live_frames_and_closes(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A replay of 3 events, then 2 live ones: the counters, gauges and lag histogram say so; the close is counted
    by its code."""
    await write(conn, 3)
    async with journal_server() as server:
        async with connect(server.url) as client:
            await client.subscribe(cursor="0")
            await client.events_through(3)
            assert (await client.frame())["op"] == "live"
            await write(conn, 2)
            await client.events_through(5)
            figures = await scrape(server.base)
        assert figures[("journal_sessions", ())] == 1
        assert figures[("journal_sessions_behind", ())] == 0
        assert figures[("journal_replayed_rows_total", ())] == 3
        assert figures[("journal_frames_sent_total", ())] == 7  # ready, 3 events, live, 2 events
        assert figures[("journal_head_id", ())] == 5
        assert figures[("journal_hub_buffer_rows", ())] == 2
        assert figures[("journal_listener_reconnects_total", ())] == 0
        assert figures[("journal_notify_send_lag_seconds_count", ())] >= 1
        assert figures[("journal_notify_send_lag_seconds_sum", ())] > 0
        assert (
            figures[("journal_notify_send_lag_seconds_bucket", (("le", "+Inf"),))]
            == (figures[("journal_notify_send_lag_seconds_count", ())])
        )

        async def counted() -> bool:
            return (await scrape(server.base)).get(("journal_session_closes_total", (("code", "1000"),))) == 1

        await until(counted)
        assert (await scrape(server.base))[("journal_sessions", ())] == 0


async def test_a_stalled_client_shows_as_behind_with_a_send_queue(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """A client that stops reading is a session behind, and the bytes it has not taken are the queue depth."""
    async with journal_server(send_timeout_s=600) as server, stalled_client(conn, server.url):

        async def stalled() -> bool:
            figures = await scrape(server.base)
            return figures[("journal_sessions_behind", ())] == 1 and figures[("journal_send_queue_bytes", ())] > 65_536

        await until(stalled)


async def test_a_lost_listener_is_counted(db_url: str, journal_server: StartServer) -> None:
    """The hub replacing its LISTEN connection shows in journal_listener_reconnects_total."""
    async with journal_server() as server:
        admin = await asyncpg.connect(db_url)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'journal-listener'"
            )
        finally:
            await admin.close()

        async def counted() -> bool:
            return (await scrape(server.base))[("journal_listener_reconnects_total", ())] == 1

        await until(counted)


async def test_a_filtered_session_given_nothing_adds_no_lag_and_odd_close_codes_are_one_series(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Events a session's filter skips are not deliveries to it; a close code outside the protocol's, chosen by the
    client, is counted as "other"."""
    async with journal_server(heartbeat_s=0.05) as server:
        async with connect(server.url) as client:
            await client.subscribe(cursor=None, filter={"channels": ["trades"]})
            assert (await client.frame())["op"] == "live"
            await write(conn, 3)
            while (frame := await client.frame())["cursor"] != "3":
                assert frame["op"] == "heartbeat"
            figures = await scrape(server.base)
            assert figures[("journal_notify_send_lag_seconds_count", ())] == 0
            await write(conn, type="trade.filled")
            await client.events_through(4)
            await client.socket.close(4999, "")

        async def counted() -> bool:
            return (await scrape(server.base)).get(("journal_session_closes_total", (("code", "other"),))) == 1

        await until(counted)
        assert (await scrape(server.base))[("journal_notify_send_lag_seconds_count", ())] >= 1


def test_lag_observations_land_in_their_buckets() -> None:
    """Each observation is counted in the first bucket whose bound it does not exceed, ``count`` times."""
    metrics = Metrics()
    metrics.observe_lag(0.0005)  # on a bound: that bucket
    metrics.observe_lag(0.003, count=4)
    metrics.observe_lag(99.0)
    text = metrics.render().decode()
    samples = {
        (sample.name, sample.labels.get("le")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if family.name == "journal_notify_send_lag_seconds"
    }
    assert samples[("journal_notify_send_lag_seconds_bucket", "0.0005")] == 1
    assert samples[("journal_notify_send_lag_seconds_bucket", "0.0025")] == 1
    assert samples[("journal_notify_send_lag_seconds_bucket", "0.005")] == 5
    assert samples[("journal_notify_send_lag_seconds_bucket", repr(LAG_BUCKETS_S[-1]))] == 5
    assert samples[("journal_notify_send_lag_seconds_bucket", "+Inf")] == 6
    assert samples[("journal_notify_send_lag_seconds_count", None)] == 6
    assert samples[("journal_notify_send_lag_seconds_sum", None)] == pytest.approx(0.0005 + 0.012 + 99.0)
    assert "journal_head_id" not in text  # no hub yet: nothing to say about it


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_one_line_per_session_with_no_token_payload_or_query_string(
    db_url: str, conn: asyncpg.Connection, journal: Journal, log_format: str
) -> None:
    """`journal serve` logs a line when a session opens and when any connection closes, with its reason, close
    code, cursor range and frames; never a token, a payload value or a query string, in either format."""
    secret_value = "do-not-log-this-value"
    await write(conn, 2, payload=json.dumps({"note": secret_value}))
    port = free_port()
    env = {"DATABASE_URL": db_url, "JOURNAL_TOKENS": TOKEN, "JOURNAL_LOG_FORMAT": log_format}
    with journal("serve", "--port", str(port), env=env) as server:
        await asyncio.to_thread(server.wait_for_line, "Uvicorn running on")
        url = f"ws://127.0.0.1:{port}/ws"
        async with websockets.connect(f"{url}?token={TOKEN}") as socket:  # a token where none belongs
            client = Client(socket)
            await client.subscribe(cursor="0", filter={"channels": ["events"]})
            await client.events_through(2)
        async with websockets.connect(url) as socket:
            await Client(socket).send({"op": "subscribe", "token": "wrong-token-0123456789"})
            await Client(socket).closed()
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{port}/healthz?token={TOKEN}")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # an absolute-form request target
        writer.write(f"GET http://127.0.0.1:{port}/readyz?token={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert (await reader.readline()).startswith(b"HTTP/1.1 ")
        writer.close()
        await writer.wait_closed()
        await asyncio.to_thread(server.wait_for_line, "readyz")
        assert server.interrupt() == 0
    output = "".join(server.lines)
    assert TOKEN not in output
    assert secret_value not in output
    assert "/ws?..." in output
    assert "/healthz?..." in output
    assert "/readyz?..." in output
    if log_format == "json":
        entries = [json.loads(line) for line in output.splitlines() if line]
        opened = [entry for entry in entries if entry["message"] == "session opened"]
        closed = [entry for entry in entries if entry["message"] == "session closed"]
        assert [(e["level"], e["logger"], e["cursor"], e["head"], e["filter"]) for e in opened] == [
            ("info", "journal_api.ws", "0", "2", {"channels": ["events"]})
        ]
        assert opened[0]["session"] == closed[0]["session"]
        assert [
            (e["reason"], e["code"], e.get("cursor_first"), e.get("cursor_last"), e.get("frames")) for e in closed
        ] == [
            ("client_left", 1000, "0", "2", 4),
            ("unauthorized", 4401, None, None, None),
        ]
        assert all(entry["ts"].endswith("Z") for entry in entries)
    else:
        assert 'journal_api.ws: session closed session="' in output
        assert 'reason="client_left" code=1000 cursor_first="0" cursor_last="2" frames=4 seconds=' in output
        assert 'reason="unauthorized" code=4401 seconds=' in output


def test_log_lines_carry_the_traceback_of_a_fault() -> None:
    """A logged exception keeps its traceback, in both formats."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("journal_api.ws", logging.ERROR, __file__, 1, "session failed", None, None)
        record.exc_info = sys.exc_info()
    text = TextFormatter().format(record)
    entry = json.loads(JsonFormatter().format(record))
    assert text.endswith("RuntimeError: boom")
    assert " ERROR journal_api.ws: session failed\nTraceback" in text
    assert entry["error"].endswith("RuntimeError: boom")
    assert entry["level"] == "error"


async def test_the_closed_line_names_a_database_outage_by_kind_only(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """A session ended by the database is logged 1011 with the error's kind, and counted."""
    caplog.set_level(logging.INFO, logger="journal_api")
    await write(conn, 3)
    async with journal_server() as server:
        await conn.execute("ALTER TABLE events RENAME TO events_gone")
        try:
            async with connect(server.url) as client:
                await client.send({"op": "subscribe", "token": TOKEN, "cursor": "0"})
                code, _ = await client.closed()
        finally:
            await conn.execute("ALTER TABLE events_gone RENAME TO events")
    assert code == 1011
    assert [(c["reason"], c["code"], c["cause"]) for c in session_closes(caplog.records)] == [
        ("internal_error", 1011, "UndefinedTableError")
    ]
