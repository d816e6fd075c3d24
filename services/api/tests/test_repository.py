"""The event repository: append, page by cursor, filter, redact (docs/20_EVENT_JOURNAL.md#repository)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from journal_api.journal.models import EventFilter, NewEvent
from journal_api.journal.redaction import REDACTED
from journal_api.journal.repository import append_event, journal_state, query_events, read_frames, read_new

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"

# id, type, level, symbol, trade_id: near-misses on purpose (order_book is not order.*, trades.* is not a trade).
DATASET = [
    (1, "decision.made", "info", "BTC-USD", None),
    (2, "order.submitted", "info", "BTC-USD", "T-1"),
    (3, "order.acknowledged", "debug", "BTC-USD", "T-1"),
    (4, "trade.filled", "info", "BTC-USD", "T-1"),
    (5, "snapshot.portfolio", "info", None, None),
    (6, "order_book.updated", "debug", "ETH-USD", None),
    (7, "trades.summary", "warn", None, None),
    (8, "risk.limit_warning", "warn", "ETH-USD", None),
    (9, "order.rejected", "error", "ETH-USD", "T-2"),
    (10, "snapshot.position", "critical", "ETH-USD", None),
    (11, "order.fill.partial", "info", "SOL-USD", "T-3"),
]


async def count(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval("SELECT count(*) FROM events")
    return value


@pytest.fixture
async def dataset(conn: asyncpg.Connection) -> asyncpg.Connection:
    """The journal holding DATASET, written with plain SQL as the engine would."""
    await conn.executemany(
        "INSERT INTO events (type, level, symbol, trade_id) VALUES ($1, $2, $3, $4)",
        [row[1:] for row in DATASET],
    )
    return conn


async def test_append_returns_the_stored_event(conn: asyncpg.Connection) -> None:
    """append_event stores one row and returns it with the id and timestamp the database gave it."""
    event = await append_event(
        conn,
        type="trade.filled",
        payload={"side": "buy", "qty": 1.5, "legs": [1, 2]},
        level="warn",
        public_safe=True,
        symbol="BTC-USD",
        trade_id="T-9",
    )
    row = await conn.fetchrow("SELECT id, ts, payload::text AS payload FROM events")
    assert row is not None
    assert (event.id, event.ts) == (row["id"], row["ts"]) == (1, row["ts"])
    assert (event.type, event.level, event.public_safe, event.symbol, event.trade_id, event.channel) == (
        "trade.filled",
        "warn",
        True,
        "BTC-USD",
        "T-9",
        "trades",
    )
    assert event.payload == {"side": "buy", "qty": 1.5, "legs": [1, 2]}


async def test_append_uses_defaults(conn: asyncpg.Connection) -> None:
    """Level info, not public, no symbol or trade id unless given."""
    event = await append_event(conn, type="decision.made", payload={})
    assert (event.level, event.public_safe, event.symbol, event.trade_id, event.payload) == (
        "info",
        False,
        None,
        None,
        {},
    )


async def test_append_accepts_a_pool(db_url: str) -> None:
    """The repository runs on a pool as well as on a connection."""
    async with asyncpg.create_pool(db_url, min_size=1, max_size=2) as pool:
        first = await append_event(pool, type="decision.made", payload={"n": 1})
        page = await query_events(pool, limit=10)
    assert page.events == [first]


async def test_append_never_stores_a_secret(conn: asyncpg.Connection) -> None:
    """Secrets are redacted before the row is written: the stored payload holds none of them."""
    await append_event(
        conn,
        type="order.submitted",
        payload={"venue": {"api_key": "k-1", "note": JWT}, "keys": [PEM], "qty": 2},
        symbol="Bearer abcdefgh12",
        trade_id=JWT,
    )
    row = await conn.fetchrow("SELECT symbol, trade_id, payload::text AS payload FROM events")
    assert row is not None
    assert (row["symbol"], row["trade_id"]) == (REDACTED, REDACTED)
    assert (
        row["payload"] == '{"qty": 2, "keys": ["[REDACTED]"], "venue": {"note": "[REDACTED]", "api_key": "[REDACTED]"}}'
    )


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"type": "Decision.made"}, "type"),
        ({"type": "decision"}, "type"),
        ({"type": 7}, "type"),
        ({"payload": [1, 2]}, "payload"),
        ({"payload": {"x": object()}}, "payload"),
        ({"payload": {1: "x"}}, "payload"),
        ({"level": "warning"}, "level"),
        ({"public_safe": "yes"}, "public_safe"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "S" * 65}, "symbol"),
        ({"trade_id": "T" * 65}, "trade_id"),
    ],
)
async def test_bad_arguments_raise_naming_the_field_and_write_nothing(
    conn: asyncpg.Connection, arguments: dict[str, Any], field: str
) -> None:
    """Every argument is checked against the journal's rules before any SQL runs."""
    call: dict[str, Any] = {"type": "decision.made", "payload": {}} | arguments
    with pytest.raises(ValidationError) as caught:
        await append_event(conn, **call)
    assert caught.value.errors()[0]["loc"][0] == field
    assert await count(conn) == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"x": float("nan")}, "payload must be JSON: NaN and infinite numbers are not allowed"),
        ({"x": float("inf")}, "payload must be JSON: NaN and infinite numbers are not allowed"),
        ({"x": "y" * 262_144}, "payload is 262153 bytes as JSON, over the limit of 262144"),
    ],
)
async def test_payload_must_be_finite_json_within_256_kib(
    conn: asyncpg.Connection, payload: dict[str, Any], message: str
) -> None:
    """NaN and oversized payloads are refused with a message that says what to do; nothing is written."""
    with pytest.raises(ValidationError, match=message):
        await append_event(conn, type="decision.made", payload=payload)
    assert await count(conn) == 0


async def test_largest_payload_is_accepted(conn: asyncpg.Connection) -> None:
    """A payload of exactly 256 KiB as JSON text fits both Python's check and the database's constraint."""
    event = await append_event(conn, type="decision.made", payload={"x": "y" * (262_144 - len('{"x": ""}'))})
    assert await conn.fetchval("SELECT octet_length(payload::text) FROM events WHERE id = $1", event.id) == 262_144


async def test_read_path_redacts_rows_written_by_plain_sql(conn: asyncpg.Connection) -> None:
    """Rows the engine wrote directly never passed through Python; every read redacts them."""
    await conn.execute(
        "INSERT INTO events (type, symbol, trade_id, payload) VALUES ('order.submitted', $1, $2, $3::jsonb)",
        "Bearer abcdefgh12",
        "T-1",
        f'{{"auth": {{"Access-Token": "t"}}, "legs": [{{"private_key": "{{}}"}}, "{JWT}"], "qty": 1}}',
    )
    event = (await query_events(conn, limit=1)).events[0]
    assert (event.symbol, event.trade_id) == (REDACTED, "T-1")
    assert event.payload == {
        "auth": {"Access-Token": REDACTED},
        "legs": [{"private_key": REDACTED}, REDACTED],
        "qty": 1,
    }


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_limit_must_be_between_1_and_1000(conn: asyncpg.Connection, limit: int) -> None:
    """A limit out of range is refused before any SQL runs."""
    with pytest.raises(ValueError, match=f"limit must be a whole number between 1 and 1000, got {limit}"):
        await query_events(conn, limit=limit)


async def test_cursor_must_not_be_negative(conn: asyncpg.Connection) -> None:
    """A negative cursor is refused."""
    with pytest.raises(
        ValueError, match=r"cursor must be an event id \(a whole number from 0 to 9223372036854775807\), got -1"
    ):
        await query_events(conn, limit=10, cursor=-1)


async def test_empty_journal_has_head_zero(conn: asyncpg.Connection) -> None:
    """An empty journal returns no events, head 0, and the cursor it was given."""
    page = await query_events(conn, limit=10)
    assert (page.events, page.cursor, page.head) == ([], 0, 0)


async def test_pages_follow_the_cursor_in_id_order(dataset: asyncpg.Connection) -> None:
    """Full pages end at their last id; the last page moves the cursor to the head."""
    seen: list[list[int]] = []
    cursors: list[int] = []
    cursor = None
    for _ in range(4):
        page = await query_events(dataset, limit=4, cursor=cursor)
        assert page.head == 11
        seen.append([event.id for event in page.events])
        cursors.append(page.cursor)
        cursor = page.cursor
    assert seen == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11], []]
    assert cursors == [4, 8, 11, 11]


async def test_cursor_ahead_of_head_is_kept(dataset: asyncpg.Connection) -> None:
    """A cursor beyond the head returns nothing and stays where it was (the stream decides what that means)."""
    page = await query_events(dataset, limit=10, cursor=50)
    assert (page.events, page.cursor, page.head) == ([], 50, 11)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"channels": ["trades"]}, [4]),
        ({"channels": ["snapshots"]}, [5, 10]),
        ({"channels": ["events"]}, [1, 2, 3, 6, 7, 8, 9, 11]),
        ({"channels": ["trades", "snapshots"]}, [4, 5, 10]),
        ({"channels": ["events", "trades", "snapshots", "trades"]}, list(range(1, 12))),
        ({"types": ["order.submitted"]}, [2]),
        ({"types": ["order.*"]}, [2, 3, 9, 11]),
        ({"types": ["order.fill.*"]}, [11]),
        ({"types": ["decision.made", "trade.*", "snapshot.position"]}, [1, 4, 10]),
        ({"types": ["trades.*"]}, [7]),
        ({"symbols": ["ETH-USD"]}, [6, 8, 9, 10]),
        ({"symbols": ["ETH-USD", "SOL-USD"]}, [6, 8, 9, 10, 11]),
        ({"trade_ids": ["T-1"]}, [2, 3, 4]),
        ({"trade_ids": ["T-1", "T-2"]}, [2, 3, 4, 9]),
        ({"min_level": "debug"}, list(range(1, 12))),
        ({"min_level": "warn"}, [7, 8, 9, 10]),
        ({"min_level": "critical"}, [10]),
        ({"channels": ["events"], "symbols": ["ETH-USD"], "min_level": "warn"}, [8, 9]),
        ({"types": ["order.*"], "trade_ids": ["T-2"]}, [9]),
        ({"symbols": ["XRP-USD"]}, []),
    ],
)
async def test_filters_and_across_fields_or_within_one(
    dataset: asyncpg.Connection, filters: dict[str, Any], expected: list[int]
) -> None:
    """Each filter field selects exactly its events; fields combine with AND, values with OR."""
    page = await query_events(dataset, limit=100, filters=EventFilter.model_validate(filters))
    assert [event.id for event in page.events] == expected
    assert page.cursor == 11


async def test_filtered_pages_advance_the_cursor_even_when_nothing_matches(dataset: asyncpg.Connection) -> None:
    """A filtered reader pages through its matches and then moves to the head, so its cursor never stalls."""
    filters = EventFilter(symbols=["ETH-USD"])
    first = await query_events(dataset, limit=2, filters=filters)
    second = await query_events(dataset, limit=2, cursor=first.cursor, filters=filters)
    third = await query_events(dataset, limit=2, cursor=second.cursor, filters=filters)
    assert [[e.id for e in p.events] for p in (first, second, third)] == [
        [6, 8],
        [9, 10],
        [],
    ]
    assert (first.cursor, second.cursor, third.cursor) == (8, 10, 11)


@pytest.mark.parametrize(
    "filters",
    [
        {"channels": []},
        {"types": []},
        {"symbols": []},
        {"trade_ids": []},
        {"channels": ["orders"]},
        {"types": ["order*"]},
        {"types": ["*"]},
        {"types": [".*"]},
        {"types": ["Order.*"]},
        {"types": ["order"]},
        {"symbols": ["S" * 65]},
        {"symbols": [""]},
        {"trade_ids": ["T-" + "1" * 63]},
        {"symbols": [f"S{n}" for n in range(101)]},
        {"min_level": "warning"},
        {"levels": ["info"]},
    ],
)
def test_bad_filters_are_refused(filters: dict[str, Any]) -> None:
    """Empty lists, unknown channels, malformed types, over-long labels and unknown fields are errors."""
    with pytest.raises(ValidationError):
        EventFilter.model_validate(filters)


async def test_event_channel_agrees_with_the_channel_filter(dataset: asyncpg.Connection) -> None:
    """Each event's channel property names the one channel filter that returns it: the channels partition the
    journal."""
    everything = (await query_events(dataset, limit=100)).events
    for channel in ("events", "trades", "snapshots"):
        page = await query_events(dataset, limit=100, filters=EventFilter.model_validate({"channels": [channel]}))
        assert [event.id for event in page.events] == [event.id for event in everything if event.channel == channel]
    assert {event.channel for event in everything} == {"events", "trades", "snapshots"}


@pytest.mark.parametrize("limit", [1.5, True, "10", None])
async def test_limit_must_be_a_whole_number(conn: asyncpg.Connection, limit: Any) -> None:
    """A float would be truncated by the driver and skip events; booleans and text are refused too."""
    with pytest.raises(ValueError, match="limit must be a whole number between 1 and 1000"):
        await query_events(conn, limit=limit)


@pytest.mark.parametrize("cursor", [1.5, True, "3", 2**63])
async def test_cursor_must_be_an_event_id(conn: asyncpg.Connection, cursor: Any) -> None:
    """Only whole numbers from 0 to 2**63-1 are cursors."""
    with pytest.raises(
        ValueError, match=r"cursor must be an event id \(a whole number from 0 to 9223372036854775807\)"
    ):
        await query_events(conn, limit=10, cursor=cursor)


def nested(depth: int) -> dict[str, Any]:
    """A payload whose innermost object sits ``depth`` levels deep."""
    payload: dict[str, Any] = {}
    for _ in range(depth - 1):
        payload = {"n": payload}
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"x": 10**400}, "payload integers must fit in 64 bits"),
        ({"x": 2**64}, "payload integers must fit in 64 bits"),
        ({"x": [-(2**63) - 1]}, "payload integers must fit in 64 bits"),
        ({"x": "a\x00b"}, "payload text may not contain NUL"),
        ({"a\x00": 1}, "payload text may not contain NUL"),
        ({"x": "\ud800"}, r"payload text must be valid Unicode \(no unpaired surrogates\)"),
        (nested(65), "payload is nested deeper than 64 levels"),
        ({"x": [1e300] * 1000}, "payload is 303007 bytes as JSON, over the limit of 262144"),
    ],
)
async def test_payload_must_be_decodable_by_every_reader(
    conn: asyncpg.Connection, payload: dict[str, Any], message: str
) -> None:
    """What a reader could not decode, or Postgres could not store, is refused before writing."""
    with pytest.raises(ValidationError, match=message) as caught:
        await append_event(conn, type="decision.made", payload=payload)
    assert "input_value" not in str(caught.value)  # the payload (maybe a secret) is never repeated in the error
    assert await count(conn) == 0


async def test_payload_limits_themselves_are_accepted(conn: asyncpg.Connection) -> None:
    """The largest and smallest integers and the deepest nesting allowed are stored and read back."""
    payload: dict[str, Any] = {"big": 2**64 - 1, "small": -(2**63), "deep": nested(63)}
    event = await append_event(conn, type="decision.made", payload=payload)
    assert event.payload == payload


async def test_payload_size_is_measured_as_postgres_prints_it(conn: asyncpg.Connection) -> None:
    """Numbers, escapes and non-ASCII text are counted exactly as the size constraint counts them."""
    payload: dict[str, Any] = {
        "f": [1e300, 1.5e-7, 100.0, 0.1, -2.5],
        "s": 'é "q" \\ \n\t\x01 €',
        "i": [0, -7],
        "b": [True, None],
    }
    event = await append_event(conn, type="decision.made", payload=payload)
    stored = await conn.fetchval("SELECT octet_length(payload::text) FROM events WHERE id = $1", event.id)
    assert stored == len(NewEvent(type="decision.made", payload=payload).payload_text().encode())


async def test_label_with_nul_is_refused(conn: asyncpg.Connection) -> None:
    """Postgres cannot store NUL in text, so a symbol with one is refused before writing."""
    with pytest.raises(ValidationError) as caught:
        await append_event(conn, type="decision.made", payload={}, symbol="BTC\x00")
    assert caught.value.errors()[0]["loc"][0] == "symbol"
    assert await count(conn) == 0


@pytest.mark.parametrize(
    "stored",
    [
        '{"x": ' + "1" + "0" * 400 + "}",  # beyond double range
        '{"x": ' + '{"n": ' * 1100 + "1" + "}" * 1100 + "}",  # deeper than JSON readers go
        '{"x": ' + '{"n": ' * 128 + "1" + "}" * 128 + "}",  # deeper than the 128 levels readers are given
    ],
)
async def test_an_undecodable_row_is_read_as_a_placeholder(conn: asyncpg.Connection, stored: str) -> None:
    """Plain SQL can store what readers cannot decode; that row reads as a placeholder and the rows after it
    still arrive, so one odd row never stops a reader."""
    await conn.execute("INSERT INTO events (type, payload) VALUES ('decision.made', $1::jsonb)", stored)
    await conn.execute("INSERT INTO events (type, payload) VALUES ('decision.made', '{\"ok\": 1}')")
    page = await query_events(conn, limit=10)
    assert [event.payload for event in page.events] == [
        {"unreadable_payload": "this payload cannot be decoded as JSON by readers; read it with SQL"},
        {"ok": 1},
    ]


@pytest.mark.parametrize("field", ["symbols", "trade_ids"])
def test_filter_values_may_not_look_like_secrets(field: str) -> None:
    """A filter on a secret-looking value would let a reader confirm a redacted secret exists."""
    with pytest.raises(ValidationError, match="a filter value may not look like a secret"):
        EventFilter.model_validate({field: ["BTC-USD", "Bearer abcdefgh12"]})


async def test_journal_state_needs_its_meta_row(conn: asyncpg.Connection) -> None:
    """A journal whose epoch row was deleted by hand says how it should have been created."""
    assert (await journal_state(conn))[1] == 0
    await conn.execute("DELETE FROM journal_meta")
    for read in (journal_state(conn), read_new(conn, limit=1, cursor=0), read_frames(conn, limit=1, cursor=0)):
        with pytest.raises(
            RuntimeError, match=r"journal_meta has no row: the journal was not created by `journal migrate`"
        ):
            await read


async def test_nesting_up_to_128_levels_is_read(conn: asyncpg.Connection) -> None:
    """Plain SQL may nest deeper than append_event allows; up to 128 levels readers still get the payload."""
    stored = '{"x": ' + '{"n": ' * 126 + "[1]" + "}" * 126 + "}"  # the list is the 128th level
    await conn.execute("INSERT INTO events (type, payload) VALUES ('decision.made', $1::jsonb)", stored)
    payload = (await query_events(conn, limit=1)).events[0].payload
    assert json.dumps(payload, separators=(",", ":")) == stored.replace(" ", "")
