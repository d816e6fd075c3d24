"""The stream's frames: encoded once as WebSocket bytes, and carrying exactly what the repository's read path
returns, secrets redacted alike (docs/30_WS_PROTOCOL.md#cost, docs/20_EVENT_JOURNAL.md#redaction)."""

from __future__ import annotations

import json
import random
from typing import Any

import asyncpg
import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from journal_api.journal.frames import text_frame
from journal_api.journal.redaction import REDACTED, may_hold_secrets, redact
from journal_api.journal.repository import query_events, read_frames

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"

# Stored by plain SQL, so nothing was redacted or refused on the way in. Each row is read by both paths.
STORED = [
    ("{}", None),
    ('{"side": "buy", "quantity": 0.5, "price": 97012.5, "ok": true, "none": null, "list": [1, "a"]}', None),
    ('{"api_key": "k-1", "nested": {"Password": 1, "items": [{"x_token": [1, 2]}]}}', None),
    ('{"pass\\nword": "escaped: folds to a sensitive key only once decoded"}', None),
    ('{"p\\u0061ssword": "escaped letters"}', None),
    ('{"note": "Authorization: Bearer abcdefghijkl"}', None),
    ('{"nested": {"deeper": ["' + JWT + '"]}}', None),
    ('{"key": "-----BEGIN EC PRIVATE KEY-----"}', None),
    ('{"' + JWT + '": "a secret as a key"}', None),
    ('{"pass": "word"}', None),
    ('{"\u212aelvin": "folds to k", "caf\u00e9": "\u65e5\u672c", "emoji": "\U0001f642"}', None),
    ('{"quote\\"d": "a \\"quoted\\" value", "tab": "a\\tb"}', None),
    ('{"big": 1' + "0" * 400 + "}", None),
    ('{"beyond_64_bits": ' + "9" * 300 + ', "fits": 18446744073709551615}', None),
    ('{"wide": [' + ", ".join(["[]"] * 200) + "]}", None),
    ('{"x": ' + '{"n": ' * 299 + "1" + "}" * 299 + "}", None),
    ('{"clean": "payload"}', JWT),  # a secret in the symbol
    ('{"below_64_bits": -9300000000000000001, "fits": -9223372036854775808}', None),
    ('{"fits_64_bits": 9223372036854775807, "negative": -922337203685477580}', None),  # 19 digits, minus and 18
]


def parse(wire: bytes) -> tuple[Frame, bytes]:
    """One frame parsed by the websockets library's own parser, and what is left after it."""
    reader = StreamReader()
    reader.feed_data(wire)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
    else:  # pragma: no cover - the parser wanted more bytes than the frame has
        raise AssertionError("incomplete frame")
    return frame, bytes(reader.buffer)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 300_000])
def test_text_frames_parse_as_one_whole_unmasked_frame(size: int) -> None:
    payload = b"x" * size
    frame, rest = parse(text_frame(payload))
    assert (frame.opcode, frame.fin, frame.data, rest) == (Opcode.TEXT, True, payload, b"")


async def test_frames_carry_what_the_repository_reads(conn: asyncpg.Connection) -> None:
    """Every stored payload, clean or not, reads the same through both paths; clean ones are copied as stored."""
    for payload, symbol in STORED:
        await conn.execute(
            "INSERT INTO events (type, level, symbol, trade_id, payload) VALUES ('trade.filled', 'warn', $1, 'T-1', "
            "$2::jsonb)",
            symbol,
            payload,
        )
    events = (await query_events(conn, limit=100)).events
    frames = list((await read_frames(conn, limit=100, cursor=0)).frames())
    assert len(frames) == len(events) == len(STORED)
    for event, frame in zip(events, frames, strict=True):
        parsed, rest = parse(frame.wire)
        assert rest == b""
        body = json.loads(bytes(parsed.data))
        identifier = str(event.id)
        assert body == {
            "op": "event",
            "cursor": identifier,
            "event": {
                "id": identifier,
                "ts": event.ts.isoformat(timespec="microseconds"),
                "type": event.type,
                "channel": event.channel,
                "level": event.level,
                "public_safe": event.public_safe,
                "symbol": event.symbol,
                "trade_id": event.trade_id,
                "payload": event.payload,
            },
        }
        assert (frame.id, frame.type, frame.level, frame.symbol, frame.trade_id, frame.channel) == (
            event.id,
            event.type,
            event.level,
            event.symbol,
            event.trade_id,
            event.channel,
        )
    stored = [await conn.fetchval("SELECT payload::text FROM events WHERE id = $1", e.id) for e in events]
    copied = [e.id for e, text, f in zip(events, stored, frames, strict=True) if text.encode() in f.wire]
    assert copied == [1, 2, 11, 17, 19]  # the clean ones; every other took the decoding path
    assert events[16].symbol == REDACTED  # the row with a JWT as its symbol
    assert all(JWT.encode() not in frame.wire for frame in frames)


async def test_the_page_tells_the_epoch_and_the_head(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO events (type, payload) VALUES ('trade.filled', '{}'), ('trade.filled', '{}')")
    page = await read_frames(conn, limit=1, cursor=0)
    assert (len(page.rows), page.cursor, page.head) == (1, 1, 2)
    assert page.epoch == str(await conn.fetchval("SELECT epoch FROM journal_meta"))


async def test_a_journal_without_its_meta_row_is_refused(conn: asyncpg.Connection) -> None:
    await conn.execute("DELETE FROM journal_meta")
    with pytest.raises(RuntimeError, match="journal_meta has no row"):
        await read_frames(conn, limit=1, cursor=0)


def _random_payload(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    parts = ["pass", "word", "tok", "en", "api", "_", "-", "Key", "\n", "\u212a", "\u0130", "x", "se", "cret", " "]
    values: list[Any] = [1, 2.5, None, True, "Bearer abcdefghijk", JWT, "plain", "\\", "pass", "word"]

    def text() -> str:
        return "".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))

    return {
        text(): _random_payload(rng, depth + 1) if depth < 2 and rng.random() < 0.3 else rng.choice([*values, text()])
        for _ in range(rng.randint(0, 4))
    }


def test_may_hold_secrets_never_clears_a_payload_that_redaction_would_change() -> None:
    """The whole-text check errs only towards redacting: checked on many payloads built from near-misses."""
    rng = random.Random(7)
    cleared = 0
    for _ in range(5000):
        payload = _random_payload(rng)
        text = json.dumps(payload, ensure_ascii=False, separators=(", ", ": "))
        if not may_hold_secrets(text):
            cleared += 1
            assert redact(payload) == payload, text
    assert 100 < cleared < 5000  # the check clears clean payloads, so this tested something
