"""Every bad input gets its close code and error frame, and other clients keep streaming (docs/30_WS_PROTOCOL.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from .conftest import TOKEN, Client, Connect, StartServer, stalled_client, wait_for_close_log, write

SECOND_TOKEN = "second-operator-token-abcdef"


def error(code: str, message: str) -> dict[str, Any]:
    return {"op": "error", "code": code, "message": message}


UNAUTHORIZED = error(
    "unauthorized", 'missing or wrong token: send "Authorization: Bearer <token>" or "token" in subscribe'
)
BAD_CURSOR = error(
    "bad_cursor", 'cursor must be an event id as a decimal string ("0" for everything), or null for live only'
)


async def refused(client: Client, first: object) -> tuple[int | None, list[dict[str, Any]]]:
    """Send ``first`` as the first message; the close code and the frames before the close."""
    await client.send(first)
    return await client.closed()


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ("not json", error("bad_request", 'the first message must be a JSON object: {"op":"subscribe", ...}')),
        ("[1, 2]", error("bad_request", 'the first message must be a JSON object: {"op":"subscribe", ...}')),
        (b"\x00binary", error("bad_request", 'the first message must be a JSON object: {"op":"subscribe", ...}')),
        ({"op": "ping"}, error("bad_request", 'the first message must be {"op":"subscribe", ...}')),
        (
            {"op": "subscribe", "token": TOKEN, "filters": {}, "curser": "1"},
            error(
                "bad_request", "unknown field(s) curser, filters; a subscribe has only op, token, cursor, epoch, filter"
            ),
        ),
        ({"op": "subscribe"}, UNAUTHORIZED),
        ({"op": "subscribe", "token": "wrong-token-0123456789"}, UNAUTHORIZED),
        ({"op": "subscribe", "token": TOKEN[:-1]}, UNAUTHORIZED),
        ({"op": "subscribe", "token": 12345}, UNAUTHORIZED),
        ({"op": "subscribe", "token": TOKEN, "cursor": "-1"}, BAD_CURSOR),
        ({"op": "subscribe", "token": TOKEN, "cursor": "abc"}, BAD_CURSOR),
        ({"op": "subscribe", "token": TOKEN, "cursor": "1.5"}, BAD_CURSOR),
        ({"op": "subscribe", "token": TOKEN, "cursor": 1.5}, BAD_CURSOR),
        ({"op": "subscribe", "token": TOKEN, "cursor": True}, BAD_CURSOR),
        ({"op": "subscribe", "token": TOKEN, "cursor": -3}, BAD_CURSOR),
        ({"op": "subscribe", "token": TOKEN, "cursor": "9223372036854775808"}, BAD_CURSOR),
        ({"op": "subscribe", "token": TOKEN, "cursor": "12345678901234567890"}, BAD_CURSOR),
        (
            {"op": "subscribe", "token": TOKEN, "filter": {"channels": []}},
            error("bad_filter", "bad filter: channels: List should have at least 1 item after validation, not 0"),
        ),
        (
            {"op": "subscribe", "token": TOKEN, "filter": {"level": "warn"}},
            error("bad_filter", "bad filter: level: Extra inputs are not permitted"),
        ),
        (
            {"op": "subscribe", "token": TOKEN, "filter": "trades"},
            error("bad_filter", "bad filter: filter: Input should be a valid dictionary or instance of EventFilter"),
        ),
        (
            {"op": "subscribe", "token": "wrong-token-0123456789", "epoch": 7, "filter": {"x": 1}},
            error("bad_request", "epoch must be the string the ready frame gave"),  # bad_request comes first
        ),
    ],
)
async def test_bad_first_message_is_refused_with_its_code(
    journal_server: StartServer, connect: Connect, first: object, expected: dict[str, Any]
) -> None:
    """Each fault is reported in an error frame and closed with the code the protocol gives it."""
    close_codes = {"bad_request": 4400, "bad_cursor": 4400, "bad_filter": 4400, "unauthorized": 4401}
    async with journal_server() as server, connect(server.url) as client:
        code, frames = await refused(client, first)
    assert frames == [expected]
    assert code == close_codes[expected["code"]]


async def test_cursor_ahead_of_the_head_must_start_again(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A cursor beyond the newest event cannot be from this journal: 4409 cursor_ahead."""
    await write(conn, 3)
    async with journal_server() as server, connect(server.url) as client:
        code, frames = await refused(client, {"op": "subscribe", "token": TOKEN, "cursor": "4"})
    assert code == 4409
    assert frames == [
        error(
            "cursor_ahead",
            "cursor 4 is beyond the newest event (3); this is not the journal your cursor came from: "
            "drop it and subscribe again",
        )
    ]


async def test_epoch_mismatch_must_start_again(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A cursor from another journal (another epoch) is refused with 4409 epoch_mismatch, even if it fits."""
    epoch = str(await conn.fetchval("SELECT epoch FROM journal_meta"))
    other = "00000000-0000-4000-8000-000000000000"
    async with journal_server() as server, connect(server.url) as client:
        code, frames = await refused(client, {"op": "subscribe", "token": TOKEN, "cursor": "0", "epoch": other})
    assert code == 4409
    assert frames == [
        error(
            "epoch_mismatch",
            f"this journal's epoch is {epoch}, not the one your cursor came from; "
            "drop the cursor and subscribe again without one",
        )
    ]


async def test_no_subscribe_in_time_is_closed_4408(journal_server: StartServer, connect: Connect) -> None:
    """A client that says nothing is closed once JOURNAL_AUTH_TIMEOUT_S has passed."""
    async with journal_server(auth_timeout_s=0.2) as server, connect(server.url) as client:
        code, frames = await client.closed()
    assert code == 4408
    assert frames == [error("auth_timeout", "no subscribe within 0.2 s; send it at once after connecting")]


async def test_token_in_the_authorization_header_is_enough(journal_server: StartServer, connect: Connect) -> None:
    """Programs may authenticate in the handshake; the subscribe then needs no token."""
    headers = {"Authorization": f"Bearer {SECOND_TOKEN}"}
    async with (
        journal_server(tokens=f"{TOKEN},{SECOND_TOKEN}") as server,
        connect(server.url, additional_headers=headers) as client,
    ):
        ready = await client.subscribe(token=None)
    assert ready["op"] == "ready"


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        (f"Bearer {TOKEN}x", None),  # wrong header token
        (f"Basic {TOKEN}", None),  # not a bearer token
        (f"Bearer {TOKEN}", "wrong-token-0123456789"),  # both sent: both must be valid
    ],
)
async def test_bad_header_token_is_refused(
    journal_server: StartServer, connect: Connect, authorization: str, token: str | None
) -> None:
    """A header token that is wrong, or not a bearer token, fails like any other: 4401."""
    message: dict[str, object] = {"op": "subscribe"}
    if token:
        message["token"] = token
    headers = {"Authorization": authorization}
    async with journal_server() as server, connect(server.url, additional_headers=headers) as client:
        code, frames = await refused(client, message)
    assert (code, frames) == (4401, [UNAUTHORIZED])


async def test_origin_not_allowed_is_refused_with_403(journal_server: StartServer, connect: Connect) -> None:
    """A browser origin not in JOURNAL_ALLOWED_ORIGINS never gets a WebSocket: HTTP 403 at the handshake."""
    async with journal_server(allowed_origins="https://console.example.com") as server:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(server.url, origin="https://evil.example.com"):
                raise AssertionError("the handshake was accepted")
        assert caught.value.response.status_code == 403
        async with connect(server.url, origin="https://console.example.com") as client:
            assert (await client.subscribe())["op"] == "ready"


async def test_the_servers_own_origin_is_allowed(journal_server: StartServer, connect: Connect) -> None:
    """The page the server serves itself (/console) may connect without being listed; a look-alike may not."""
    async with journal_server() as server:
        own = server.base  # http://127.0.0.1:PORT, as a browser on /console sends it
        port = int(own.rsplit(":", 1)[1])
        async with connect(server.url, origin=own) as client:
            assert (await client.subscribe())["op"] == "ready"
        for origin in [f"http://127.0.0.1:{port + 1}", f"ftp://127.0.0.1:{port}", "null"]:
            with pytest.raises(InvalidStatus) as caught:
                async with connect(server.url, origin=origin):
                    raise AssertionError(f"the handshake from {origin} was accepted")
            assert caught.value.response.status_code == 403


async def test_anything_but_ping_after_subscribing_is_refused(journal_server: StartServer, connect: Connect) -> None:
    """After subscribe only pings are allowed: another subscribe, junk or binary data closes 4400."""
    expected = [error("bad_request", 'after subscribing, send only {"op":"ping"}')]
    async with journal_server() as server:
        for message in [{"op": "subscribe", "token": TOKEN}, "junk", b"\x01"]:
            async with connect(server.url) as client:
                await client.subscribe()
                code, frames = await refused(client, message)
            assert code == 4400
            assert [frame for frame in frames if frame["op"] == "error"] == expected


async def test_message_over_64_kib_is_closed_1009(journal_server: StartServer, connect: Connect) -> None:
    """The server never buffers a huge client message: 1009 (message too big)."""
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe()
        await client.send(json.dumps({"op": "ping", "pad": "x" * 70_000}))
        code, _ = await client.closed()
    assert code == 1009


async def test_too_many_connections_are_closed_4429(journal_server: StartServer, connect: Connect) -> None:
    """Past JOURNAL_MAX_CONNECTIONS a new connection is told to back off; the existing one keeps streaming."""
    async with journal_server(max_connections=1) as server, connect(server.url) as first:
        await first.subscribe()
        async with connect(server.url) as second:
            code, frames = await second.closed()
        assert code == 4429
        assert frames == [error("overloaded", "too many connections; reconnect with backoff")]
        await first.send({"op": "ping"})
        assert [frame for frame in [await first.frame(), await first.frame()] if frame["op"] == "pong"]


async def test_other_clients_keep_streaming_while_one_misbehaves(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Errors close only the faulty connection."""
    async with journal_server() as server, connect(server.url) as good:
        await good.subscribe(cursor="0")
        for bad in ["junk", {"op": "subscribe"}, {"op": "subscribe", "token": TOKEN, "cursor": "x"}]:
            async with connect(server.url) as client:
                await refused(client, bad)
            ids = await write(conn, 2)
            assert [int(event["id"]) for event in await good.events_through(ids[-1])][-2:] == ids


async def test_a_client_that_stops_reading_is_closed_4429(
    conn: asyncpg.Connection, journal_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that takes no frame for JOURNAL_SEND_TIMEOUT_S is closed slow_consumer, and learns why as soon as
    it reads again."""
    caplog.set_level(logging.INFO, logger="journal_api")
    async with journal_server(send_timeout_s=0.3) as server, stalled_client(conn, server.url) as client:
        await wait_for_close_log(caplog, "slow_consumer")
        code, frames = await client.closed(timeout_s=60)
    assert code == 4429
    assert frames[-1] == error(
        "slow_consumer", "the client took no frame for 0.3 s; reconnect and resume from your last cursor"
    )


async def test_client_leaving_before_subscribing_ends_quietly(
    journal_server: StartServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection closed before its first message costs nothing and logs nothing alarming."""
    caplog.set_level(logging.WARNING)
    async with journal_server() as server:
        async with connect(server.url):
            pass

        async def gone() -> bool:
            sessions: int = server.app.state.journal.metrics.connections
            return sessions == 0

        for _ in range(6000):
            if await gone():
                break
            await asyncio.sleep(0.01)
        assert await gone()
    assert [r for r in caplog.records if r.name.startswith("journal_api")] == []


async def test_a_server_fault_closes_1011_and_is_logged(
    journal_server: StartServer, connect: Connect, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the server (simulated: the head lookup raises) closes only that session, 1011, with a traceback in
    the log and nothing internal in the frame."""

    async def broken(db: object) -> tuple[str, int]:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("journal_api.stream.ws.journal_state", broken)
    caplog.set_level(logging.ERROR, logger="journal_api")
    async with journal_server() as server, connect(server.url) as client:
        code, frames = await refused(client, {"op": "subscribe", "token": TOKEN})
    assert code == 1011
    assert frames == [error("internal_error", "internal error; reconnect and resume")]
    [record] = [r for r in caplog.records if r.getMessage() == "session failed"]
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError


async def test_a_malformed_upgrade_is_refused_with_400(journal_server: StartServer, connect: Connect) -> None:
    """An upgrade request without a WebSocket key gets HTTP 400 at the handshake; the server goes on serving."""
    async with journal_server() as server, httpx.AsyncClient(base_url=server.base) as http:
        response = await http.get("/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
        assert response.status_code == 400
        async with connect(server.url) as client:
            assert (await client.subscribe())["op"] == "ready"


async def test_a_client_that_pauses_reading_gets_everything_once_it_reads_again(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """Backpressure, not loss: while a client does not read, the server's sends wait; when it reads again within
    JOURNAL_SEND_TIMEOUT_S, every event arrives, in order, once."""
    payload = json.dumps({"blob": "x" * 4000})
    async with (
        journal_server() as server,
        websockets.connect(server.url, max_queue=1, open_timeout=30) as socket,  # stops reading when one waits
    ):
        client = Client(socket)
        await client.subscribe(cursor=None)
        ids = [n for _ in range(40) for n in await write(conn, 120, payload=payload)]  # ~20 MB, more than buffers
        received = await client.events_through(ids[-1])
    assert [int(event["id"]) for event in received] == ids
