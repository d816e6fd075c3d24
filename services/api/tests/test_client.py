"""`journal_api.client`: one `async for` across reconnects (docs/30_WS_PROTOCOL.md#python-client).

Against the real server where it can be; where a peer must misbehave on purpose, against a real websockets server
that does exactly that.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path

import asyncpg
import pytest
import websockets
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from journal_api.client import (
    ClientError,
    CursorAheadError,
    CursorRejectedError,
    EpochMismatchError,
    Event,
    SubscriptionRefusedError,
    subscribe,
)

from .conftest import TOKEN, StartServer, free_port, write


class Retries:
    """Records what the client said before each reconnect."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.delays: list[float] = []
        self.changed = asyncio.Event()

    def __call__(self, problem: str, delay_s: float) -> None:
        self.problems.append(problem)
        self.delays.append(delay_s)
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(60):
            while len(self.problems) < count:
                self.changed.clear()
                await self.changed.wait()


async def until(moved: asyncio.Event, check: Callable[[], bool]) -> None:
    """Until ``check()`` holds, looking again whenever ``moved`` is set (60 s at most)."""
    async with asyncio.timeout(60):
        while not check():
            moved.clear()
            await moved.wait()


@asynccontextmanager
async def peer(handler: Callable[[ServerConnection], Awaitable[None]], **options: object) -> AsyncIterator[str]:
    """A real WebSocket server that runs ``handler`` for each connection; yields its ws:// URL."""
    async with websockets.serve(handler, "127.0.0.1", 0, **options) as server:  # type: ignore[arg-type]
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"


async def test_every_event_once_in_order_across_a_restart_with_the_cursor_kept(
    conn: asyncpg.Connection, journal_server: StartServer, tmp_path: Path
) -> None:
    """A server restart (1012) is survived: the loop sees 1..5 once each, the file and callback follow."""
    port = free_port()
    epoch = str(await conn.fetchval("SELECT epoch FROM journal_meta"))
    cursor_file = tmp_path / "cursor.json"
    saved: list[tuple[str, str | None]] = []
    retries = Retries()
    await write(conn, 3, symbol="BTC-USD", trade_id="T-1")
    events = subscribe(
        f"ws://127.0.0.1:{port}/ws",
        token=TOKEN,
        cursor="0",
        cursor_file=cursor_file,
        on_cursor=lambda cursor, epoch: saved.append((cursor, epoch)),
        on_retry=retries,
    )
    received: list[Event] = []
    async with journal_server(port=port):
        async for event in events:
            received.append(event)
            if event.id == 3:
                break
    await write(conn, 2)
    async with journal_server(port=port):
        async for event in events:
            received.append(event)
            if event.id == 5:
                break
    await events.aclose()
    assert [event.id for event in received] == [1, 2, 3, 4, 5]
    assert retries.problems[0].startswith("closed 1012")
    assert 0.5 <= retries.delays[0] <= 0.55
    first = received[0]
    assert (first.type, first.channel, first.level, first.symbol, first.trade_id) == (
        "order.submitted",
        "events",
        "info",
        "BTC-USD",
        "T-1",
    )
    assert first.public_safe is False
    assert first.payload == {"side": "buy"}
    assert first.ts.tzinfo is not None
    assert first.ts.utcoffset() == UTC.utcoffset(None)
    assert first.wire["id"] == "1"
    # The loop left during event 5, so its handling may not have finished: the cursor stays at 4.
    assert events.cursor == "4"
    assert events.epoch == epoch
    assert json.loads(cursor_file.read_text()) == {"cursor": "4", "epoch": epoch}
    assert saved[0] == ("0", epoch)  # the `ready` frame's cursor
    assert ("3", epoch) in saved


async def test_a_cursor_is_saved_only_once_the_loop_has_handled_its_event(
    conn: asyncpg.Connection, journal_server: StartServer, tmp_path: Path
) -> None:
    """A program that stops in the middle of an event sees that event again on its next run (at-least-once)."""
    cursor_file = tmp_path / "cursor.json"
    await write(conn, 3)
    async with journal_server() as server:
        async with subscribe(server.url, token=TOKEN, cursor=0, cursor_file=cursor_file) as events:
            async for event in events:
                if event.id == 2:
                    break  # as if the program crashed while handling event 2
        assert json.loads(cursor_file.read_text())["cursor"] == "1"
        async with subscribe(server.url, token=TOKEN, cursor_file=cursor_file) as events:
            assert [event.id async for event in _take(events, 2)] == [2, 3]


async def _take(events: AsyncIterator[Event], count: int) -> AsyncIterator[Event]:
    async for event in events:
        yield event
        count -= 1
        if count == 0:
            return


async def test_an_explicit_cursor_wins_over_the_file_and_a_filter_is_sent(
    conn: asyncpg.Connection, journal_server: StartServer, tmp_path: Path
) -> None:
    """``cursor=`` overrides the file (whose epoch is then not sent); ``filter=`` is the protocol's filter."""
    cursor_file = tmp_path / "cursor.json"
    cursor_file.write_text(json.dumps({"cursor": "3", "epoch": "00000000-0000-4000-8000-000000000000"}))
    await write(conn, 2)
    await write(conn, 2, type="trade.filled")
    async with journal_server() as server:
        events = subscribe(
            server.url, token=TOKEN, cursor="1", cursor_file=cursor_file, filter={"channels": ["trades"]}
        )
        async with events:
            assert [event.id async for event in _take(events, 2)] == [3, 4]


async def test_live_only_by_default_and_live_is_reported(conn: asyncpg.Connection, journal_server: StartServer) -> None:
    """Without a cursor the subscription starts at the head; ``live`` turns true once the backlog is replayed."""
    await write(conn, 2)
    async with journal_server() as server:
        moved = asyncio.Event()
        events = subscribe(server.url, token=TOKEN, on_cursor=lambda cursor, epoch: moved.set())
        reader = asyncio.create_task(anext(events))
        await until(moved, lambda: events.live)
        assert events.cursor == "2"
        await write(conn)
        event = await asyncio.wait_for(reader, 60)
        await events.aclose()
    assert event.id == 3


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        (
            {"cursor": "0", "epoch": "00000000-0000-4000-8000-000000000000"},
            EpochMismatchError,
            "the server rejected the cursor (4409 epoch_mismatch): this journal's epoch is",
        ),
        ({"cursor": "99"}, CursorAheadError, "the server rejected the cursor (4409 cursor_ahead): cursor 99 is beyond"),
    ],
)
async def test_a_cursor_from_another_journal_is_a_clear_exception(
    journal_server: StartServer, fields: dict[str, str], error: type[CursorRejectedError], message: str
) -> None:
    """Retrying cannot help a cursor that belongs to another journal: the iteration ends with an exception that
    names the problem, and the cursor is left for the caller to drop."""
    async with journal_server() as server:
        events = subscribe(server.url, token=TOKEN, cursor=fields["cursor"], epoch=fields.get("epoch"))
        with pytest.raises(error) as raised:
            await anext(events)
    assert str(raised.value).startswith(message)
    assert isinstance(raised.value, CursorRejectedError)
    assert events.cursor == fields["cursor"]


@pytest.mark.parametrize(
    ("token", "filter", "code", "error"),
    [
        ("wrong-token-0123456789", None, 4401, "unauthorized"),
        (TOKEN, {"channels": ["nope"]}, 4400, "bad_filter"),
    ],
)
async def test_a_refused_subscription_ends_the_iteration(
    journal_server: StartServer, token: str, filter: dict[str, list[str]] | None, code: int, error: str
) -> None:
    """A wrong token or a bad filter is raised, with the close code, the error code and the server's message."""
    async with journal_server() as server:
        with pytest.raises(SubscriptionRefusedError) as raised:
            await anext(subscribe(server.url, token=token, filter=filter))
    assert (raised.value.code, raised.value.error) == (code, error)
    assert str(raised.value).startswith(f"the server refused the subscription ({code}): ")


async def test_an_upgrade_refused_with_4xx_is_final_and_5xx_is_retried() -> None:
    """HTTP 403 on the upgrade cannot be fixed by retrying; HTTP 503 can (a proxy whose backend is restarting)."""
    statuses = iter([503, 403])

    def refuse(connection: ServerConnection, request: Request) -> Response:
        status = next(statuses)
        return Response(status, "refused", Headers(), b"")

    async def never(socket: ServerConnection) -> None:
        raise AssertionError("no connection is accepted")

    retries = Retries()
    async with peer(never, process_request=refuse) as url:
        with pytest.raises(SubscriptionRefusedError) as raised:
            await anext(subscribe(url, token=TOKEN, on_retry=retries))
    assert retries.problems == ["the upgrade got HTTP 503"]
    assert raised.value.code == 403
    assert raised.value.error is None


async def test_a_silent_server_and_a_refused_port_are_retried() -> None:
    """A server that sends nothing within the idle timeout is left; a port with nobody behind it is retried; the
    backoff doubles until a subscription succeeds."""

    async def silent(socket: ServerConnection) -> None:
        await socket.wait_closed()

    retries = Retries()
    async with peer(silent) as url:
        events = subscribe(url, token=TOKEN, on_retry=retries, idle_timeout_s=0.1)
        reader = asyncio.create_task(anext(events))
        await retries.wait_for(2)
    await retries.wait_for(3)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await events.aclose()
    assert retries.problems[:2] == ["no frame for 0.1 s", "no frame for 0.1 s"]
    assert retries.problems[2].startswith("cannot connect: ")
    first, second, third = retries.delays[:3]
    assert (0.5 <= first <= 0.55, 1 <= second <= 1.1, 2 <= third <= 2.2) == (True, True, True)


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (["hello"], "sent a frame that is not journal.v1 JSON: is it a journal server?"),
        (["[1, 2]"], "sent a frame that is not journal.v1 JSON: is it a journal server?"),
        ([b"\x00"], "sent a frame that is not journal.v1 JSON: is it a journal server?"),
        (['{"op": "event", "cursor": "1"}'], "sent a malformed 'event' frame: is it a journal server?"),
        (['{"cursor": "1"}'], "sent a malformed None frame: is it a journal server?"),
    ],
)
async def test_a_peer_that_does_not_speak_journal_v1_is_an_error(frames: list[str | bytes], message: str) -> None:
    """Not JSON, not an object, or a frame missing what journal.v1 promises: reported, not retried forever."""

    async def wrong(socket: ServerConnection) -> None:
        for frame in frames:
            await socket.send(frame)
        await socket.wait_closed()

    async with peer(wrong) as url:
        with pytest.raises(ClientError) as raised:
            await anext(subscribe(url, token=TOKEN))
    assert str(raised.value) == f"{url} {message}"


async def test_unknown_frames_are_ignored_and_protocol_closes_are_final() -> None:
    """A pong or an op of a later protocol version carries nothing to act on; a close 1008 without an error frame
    is refused with its reason."""
    seen: list[str] = []

    async def future(socket: ServerConnection) -> None:
        seen.append(str(await socket.recv()))
        await socket.send('{"op": "ready", "epoch": "e", "cursor": "7", "head": "7"}')
        await socket.send('{"op": "pong"}')
        await socket.send('{"op": "snapshot", "whatever": 1}')
        await socket.close(1008, "policy")

    async with peer(future) as url:
        events = subscribe(url, token=TOKEN, cursor=7, epoch="e", filter={"channels": ["trades"]})
        with pytest.raises(SubscriptionRefusedError) as raised:
            await anext(events)
    assert json.loads(seen[0]) == {"op": "subscribe", "cursor": "7", "epoch": "e", "filter": {"channels": ["trades"]}}
    assert (raised.value.code, raised.value.error) == (1008, None)
    assert str(raised.value) == "the server refused the subscription (1008): policy"
    assert events.cursor == "7"


async def test_the_token_travels_in_the_header_and_never_in_a_repr() -> None:
    """The token is sent as ``Authorization: Bearer``, not in the URL or the subscribe message."""
    headers: list[str | None] = []

    async def record(socket: ServerConnection) -> None:
        assert socket.request is not None
        headers.append(socket.request.headers.get("Authorization"))
        await socket.close(4401, "")

    async with peer(record) as url:
        events = subscribe(url, token=TOKEN)
        with pytest.raises(SubscriptionRefusedError):
            await anext(events)
    assert headers == [f"Bearer {TOKEN}"]
    assert TOKEN not in repr(events)
    assert repr(events) == f"Subscriber({url!r}, cursor=None, epoch=None)"


@pytest.mark.parametrize("url", ["http://127.0.0.1/ws", "ws://:::bad", "127.0.0.1:8000"])
def test_a_url_that_is_not_a_websocket_url_is_refused_at_once(url: str) -> None:
    with pytest.raises(ValueError, match="is not a WebSocket URL"):
        subscribe(url, token=TOKEN)


@pytest.mark.parametrize("text", ["not json", "[1, 2]"])
def test_a_broken_cursor_file_is_named(tmp_path: Path, text: str) -> None:
    cursor_file = tmp_path / "cursor.json"
    cursor_file.write_text(text)
    with pytest.raises(ClientError, match=f"^{cursor_file} is not a cursor file; delete it or name another$"):
        subscribe("ws://127.0.0.1:1/ws", token=TOKEN, cursor_file=cursor_file)


async def test_a_filtered_cursor_advances_with_heartbeats_into_a_new_file(
    conn: asyncpg.Connection, journal_server: StartServer, tmp_path: Path
) -> None:
    """Events the filter skips still move the saved cursor, through heartbeats; a missing file means live only."""
    cursor_file = tmp_path / "new.json"
    await write(conn, 2)
    moved = asyncio.Event()
    async with journal_server(heartbeat_s=0.05) as server:
        events = subscribe(
            server.url,
            token=TOKEN,
            cursor_file=cursor_file,
            filter={"channels": ["trades"]},
            on_cursor=lambda cursor, epoch: moved.set(),
        )
        reader = asyncio.create_task(anext(events))
        await until(moved, lambda: events.live)
        assert events.cursor == "2"
        await write(conn, 2)
        await until(moved, lambda: events.cursor == "4")
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await events.aclose()
    assert json.loads(cursor_file.read_text())["cursor"] == "4"


async def test_reconnects_are_logged_by_default() -> None:
    """Without ``on_retry``, each reconnect is a warning on the ``journal_api.client`` logger."""
    records: list[logging.LogRecord] = []
    logged = asyncio.Event()

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)
            logged.set()

    logger = logging.getLogger("journal_api.client")
    handler = Recorder()
    logger.addHandler(handler)
    try:
        events = subscribe(f"ws://127.0.0.1:{free_port()}/ws", token=TOKEN)
        reader = asyncio.create_task(anext(events))
        await asyncio.wait_for(logged.wait(), 60)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await events.aclose()
    finally:
        logger.removeHandler(handler)
    assert records[0].levelname == "WARNING"
    assert records[0].getMessage().startswith("cannot connect: ")
    assert records[0].getMessage().endswith(" s")


async def test_a_cursor_that_cannot_be_saved_ends_the_iteration(
    conn: asyncpg.Connection, journal_server: StartServer, tmp_path: Path
) -> None:
    """A cursor file in a folder that does not exist is the caller's problem, raised, not a reason to reconnect;
    so is whatever ``on_cursor`` raises."""
    await write(conn)
    retries = Retries()
    async with journal_server() as server:
        events = subscribe(
            server.url, token=TOKEN, cursor=0, cursor_file=tmp_path / "gone" / "c.json", on_retry=retries
        )
        with pytest.raises(ClientError, match=r"^cannot save the cursor to .*c\.json \(No such file or directory\)$"):
            await anext(events)

        def refuse(cursor: str, epoch: str | None) -> None:
            raise ConnectionRefusedError("the caller's own database is down")

        events = subscribe(server.url, token=TOKEN, cursor=0, on_cursor=refuse, on_retry=retries)
        with pytest.raises(ConnectionRefusedError, match="the caller's own database is down"):
            await anext(events)
    assert retries.problems == []


def test_a_cursor_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match=f"^cannot read the cursor file {tmp_path} \\(Is a directory\\)$"):
        subscribe("ws://127.0.0.1:1/ws", token=TOKEN, cursor_file=tmp_path)


async def test_a_proxy_timeout_or_rate_limit_is_retried_and_backoff_grows_until_progress() -> None:
    """HTTP 408 and 429 on the upgrade are retried; a server that sends `ready` and closes at once does not reset
    the backoff (it delivered nothing), so reconnects slow down."""
    statuses = iter([408, 429])

    def maybe_refuse(connection: ServerConnection, request: Request) -> Response | None:
        status = next(statuses, None)
        return None if status is None else Response(status, "busy", Headers(), b"")

    async def ready_then_fail(socket: ServerConnection) -> None:
        await socket.recv()
        await socket.send('{"op": "ready", "epoch": "e", "cursor": "1", "head": "1"}')
        await socket.close(1011, "")

    retries = Retries()
    async with peer(ready_then_fail, process_request=maybe_refuse) as url:
        events = subscribe(url, token=TOKEN, cursor=1, on_retry=retries)
        reader = asyncio.create_task(anext(events))
        await retries.wait_for(4)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await events.aclose()
    assert retries.problems[:4] == [
        "the upgrade got HTTP 408",
        "the upgrade got HTTP 429",
        "closed 1011 (no reason given)",
        "closed 1011 (no reason given)",
    ]
    assert [round(delay) for delay in retries.delays[2:4]] == [2, 4]


def test_a_password_in_the_url_is_never_shown() -> None:
    events = subscribe("ws://operator:hunter2-secret@127.0.0.1:1/ws", token=TOKEN)
    assert "hunter2-secret" not in repr(events)
    assert repr(events) == "Subscriber('ws://operator:***@127.0.0.1:1/ws', cursor=None, epoch=None)"
    with pytest.raises(ValueError, match=r"^'http://operator:\*\*\*@h/ws' is not a WebSocket URL"):
        subscribe("http://operator:hunter2-secret@h/ws", token=TOKEN)
