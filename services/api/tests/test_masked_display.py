"""A masked value looks the same through every reader: the frame, the Python client, `journal tail` and its
`--pretty` lines all show the server's `[REDACTED]` markers as sent (docs/asyncapi.yaml, Event)."""

from __future__ import annotations

import asyncio
import json
import random

import asyncpg
import orjson

from journal_api.client import subscribe

from .conftest import TOKEN, Connect, Journal, StartServer, write
from .secret_corpus import B62, HEX
from .test_console import console

_rng = random.Random(12)
PASSWORD = "".join(_rng.choice(B62) for _ in range(18))
TOKEN_LEAK = "ghp_" + "".join(_rng.choice(B62) for _ in range(36))
TRADE_ID = "3f2a1b4c-1111-4222-8333-444455556666"  # a UUID under an id: public data, shown
KEY = "0x" + "".join(_rng.choice(HEX) for _ in range(64))  # a raw key under a key that says nothing: masked
PAYLOAD = {
    "error": f"connect failed: postgres://engine:{PASSWORD}@db.internal:5432/journal",
    "note": f"retrying with {TOKEN_LEAK}",
    "wallet": {"loaded": KEY},
    "price": 97012.5,
}
EXPECTED = {
    "error": "connect failed: postgres://engine:[REDACTED]@db.internal:5432/journal",
    "note": "retrying with [REDACTED]",
    "wallet": {"loaded": "[REDACTED]"},
    "price": 97012.5,
}
SECRETS = [PASSWORD, TOKEN_LEAK, KEY[2:]]


async def test_frame_client_and_tail_show_the_same_masked_values(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect, journal: Journal
) -> None:
    """One event with a credential URL, a token and a raw key, written by plain SQL: each reader shows the
    server's masks, byte for byte the same strings."""
    (event_id,) = await write(conn, symbol="BTC-USD", trade_id=TRADE_ID, payload=json.dumps(PAYLOAD))
    async with journal_server() as server:
        async with connect(server.url) as raw:
            await raw.subscribe(cursor="0")
            (frame_event,) = await raw.events_through(event_id)
        async with subscribe(server.url, token=TOKEN, cursor="0") as events:
            client_event = await asyncio.wait_for(anext(aiter(events)), 30)
        with journal("tail", "--url", server.url, "--cursor", "0", env={"JOURNAL_TOKEN": TOKEN}) as cli:
            tail_json = (await asyncio.to_thread(cli.wait_for_line, r"^\{")).string.rstrip("\n")
            assert cli.interrupt() == 0
        args = ["tail", "--url", server.url, "--cursor", "0", "--pretty"]
        with journal(*args, env={"JOURNAL_TOKEN": TOKEN}) as cli:
            tail_pretty = (await asyncio.to_thread(cli.wait_for_line, r"^\d+ ")).string.rstrip("\n")
            assert cli.interrupt() == 0
    assert frame_event["payload"] == EXPECTED
    assert frame_event["trade_id"] == TRADE_ID
    assert client_event.payload == EXPECTED
    assert client_event.wire == frame_event
    assert json.loads(tail_json) == frame_event
    head, _, body = tail_pretty.partition(" {")
    assert head.endswith(f" info  order.submitted BTC-USD {TRADE_ID}")
    assert orjson.loads("{" + body) == EXPECTED  # the payload as the server sent it (jsonb orders the keys)
    for secret in SECRETS:
        assert secret not in json.dumps(frame_event) + tail_json + tail_pretty


async def test_the_console_shows_the_masks_the_server_sent(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """The console's row shows the payload, symbol and trade id exactly as the frame holds them, masks included."""
    async with journal_server() as server, console(server.base) as tab:
        await tab.open()
        await tab.sign_in()
        await tab.state("live")
        (event_id,) = await write(conn, symbol=TOKEN_LEAK, trade_id=TRADE_ID, payload=json.dumps(PAYLOAD))
        assert await tab.rows_through(event_id) == [event_id]
        cells: list[str] = await tab.page.locator("#rows tr").first.locator("td").all_text_contents()
        async with connect(server.url) as raw:
            await raw.subscribe(cursor="0")
            (frame_event,) = await raw.events_through(event_id)
    assert frame_event["payload"] == EXPECTED
    assert cells[5:] == ["[REDACTED]", TRADE_ID, json.dumps(frame_event["payload"], separators=(",", ":"))]
