"""Never a secret: not in a frame, not in a log line, whatever plain SQL wrote (docs/20_EVENT_JOURNAL.md#redaction)."""

from __future__ import annotations

import json
import logging

import asyncpg
import pytest

from journal_api.stream.logs import FIELDS

from .conftest import TOKEN, Connect, StartServer

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcGVyYXRvciJ9.c2lnbmF0dXJlLXNlY3JldA"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\\n{PEM_BODY}\\n-----END RSA PRIVATE KEY-----"
SECRETS = ["hunter2-venue-password", "sk-live-api-key-77", "refresh-xyz-123", JWT, PEM_BODY, "abcdefgh12bearer"]
PAYLOAD = (
    '{"order": {"venue": {"API_KEY": "sk-live-api-key-77", "auth": {"Password": "hunter2-venue-password"}}},'
    f' "legs": [{{"refresh-token": "refresh-xyz-123"}}, "{JWT}", ["{PEM}"]],'
    ' "note": "Authorization: Bearer abcdefgh12bearer", "qty": 3}'
)


async def test_secrets_written_by_plain_sql_appear_in_no_frame_and_no_log(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """Nested, in lists, JWT and PEM values, a bearer header, a secret symbol: all redacted in replay and live
    frames; neither they nor the operator token reach any log line, at any level."""
    caplog.set_level(logging.DEBUG)
    uvicorn_logger = logging.getLogger("uvicorn")  # uvicorn's loggers do not propagate: listen to them directly
    insert = "INSERT INTO events (type, symbol, payload) VALUES ('order.submitted', $1, $2::jsonb)"
    await conn.execute(insert, "Bearer abcdefgh12bearer", PAYLOAD)
    async with journal_server(log_level="debug") as server:
        uvicorn_logger.addHandler(caplog.handler)  # after uvicorn configured its logging for this server
        assert logging.getLogger("uvicorn.error").isEnabledFor(logging.DEBUG)
        async with connect(server.url) as client:
            await client.send({"op": "subscribe", "token": TOKEN, "cursor": "0"})
            replayed = [await client.socket.recv() for _ in range(3)]  # ready, the event, live
            await conn.execute(insert, "Bearer abcdefgh12bearer", PAYLOAD)
            live = await client.socket.recv()
            await client.send({"op": "subscribe", "token": "wrong-token-" + TOKEN})  # a refused message, logged
            await client.closed()
    uvicorn_logger.removeHandler(caplog.handler)
    frames = [str(frame) for frame in [*replayed, live]]
    events = [json.loads(frame)["event"] for frame in frames if '"op":"event"' in frame]
    assert len(events) == 2
    for event in events:
        assert event["symbol"] == "[REDACTED]"
        assert event["payload"] == {
            "order": {"venue": {"API_KEY": "[REDACTED]", "auth": {"Password": "[REDACTED]"}}},
            "legs": [{"refresh-token": "[REDACTED]"}, "[REDACTED]", ["[REDACTED]"]],
            "note": "Authorization: [REDACTED]",  # only the secret part is masked
            "qty": 3,
        }
    # Everything the server side logged (uvicorn, Starlette, asyncpg, the journal), at every level; the test's own
    # client library (websockets.client) logs its frames at DEBUG and is not the server.
    server_records = [record for record in caplog.records if record.name != "websockets.client"]
    logged = "\n".join(
        record.getMessage() + repr(record.args) + str(record.exc_info) + repr(getattr(record, FIELDS, None))
        for record in server_records
    )
    assert "'reason': 'bad_request'" in logged  # the journal's logs were captured
    assert "connection open" in logged  # and uvicorn's, at DEBUG
    for secret in [*SECRETS, TOKEN]:
        assert all(secret not in frame for frame in frames)
        assert secret not in logged
    # The hub read the live event once and said where its writer leaks: one line per rule, never the value.
    leaks = [getattr(r, FIELDS) for r in server_records if r.name == "journal_api.leaks"]
    live_id = json.loads(str(live))["event"]["id"]
    assert sorted((leak["rule"], leak["path"]) for leak in leaks) == [
        ("authorization-bearer", "symbol"),
        ("jwt", "payload.legs[1]"),
        ("private-key", "payload.legs[2][0]"),
    ]
    assert {(leak["event_id"], leak["type"], leak["unlogged"]) for leak in leaks} == {(live_id, "order.submitted", 0)}
