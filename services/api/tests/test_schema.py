"""The journal's schema enforces its rules on any writer, including plain SQL (docs/20_EVENT_JOURNAL.md#schema)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from journal_api.journal.migrations import apply_migrations, load_migrations
from journal_api.journal.wake import register_hub, set_asleep

INSERT = "INSERT INTO events (type, level, symbol, trade_id, payload) VALUES ($1, $2, $3, $4, $5::jsonb)"


async def count(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval("SELECT count(*) FROM events")
    return value


async def test_plain_insert_gets_defaults_and_an_id(conn: asyncpg.Connection) -> None:
    """A row naming only the type gets an id, a timestamp, level info, not public, an empty payload."""
    row = await conn.fetchrow("INSERT INTO events (type) VALUES ('decision.made') RETURNING *")
    assert row is not None
    assert row["id"] == 1
    assert row["ts"] is not None
    assert (row["level"], row["public_safe"], row["symbol"], row["trade_id"], row["payload"]) == (
        "info",
        False,
        None,
        None,
        "{}",
    )


async def test_writer_supplied_id_is_overwritten(conn: asyncpg.Connection) -> None:
    """The trigger assigns the id whatever the writer sends, so no writer can jump the cursor."""
    await conn.execute("INSERT INTO events (type) VALUES ('decision.made')")
    row = await conn.fetchrow("INSERT INTO events (id, type) VALUES (999, 'decision.made') RETURNING id")
    assert row is not None
    assert row["id"] == 2


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        (("Decision.made", "info", None, None, "{}"), "events_type_format"),
        (("decision", "info", None, None, "{}"), "events_type_format"),
        (("decision..made", "info", None, None, "{}"), "events_type_format"),
        (("decision.made.", "info", None, None, "{}"), "events_type_format"),
        (("1decision.made", "info", None, None, "{}"), "events_type_format"),
        (("decision-x.made", "info", None, None, "{}"), "events_type_format"),
        (("a." + "b" * 127, "info", None, None, "{}"), "events_type_format"),
        (("decision.made", "warning", None, None, "{}"), "events_level_known"),
        (("decision.made", "INFO", None, None, "{}"), "events_level_known"),
        (("decision.made", "info", "", None, "{}"), "events_symbol_length"),
        (("decision.made", "info", "S" * 65, None, "{}"), "events_symbol_length"),
        (("decision.made", "info", None, "", "{}"), "events_trade_id_length"),
        (("decision.made", "info", None, "T" * 65, "{}"), "events_trade_id_length"),
        (("decision.made", "info", None, None, "[1, 2]"), "events_payload_object"),
        (("decision.made", "info", None, None, '"text"'), "events_payload_object"),
        (("decision.made", "info", None, None, "null"), "events_payload_object"),
        (("decision.made", "info", None, None, '{"x": "' + "y" * 262_140 + '"}'), "events_payload_size"),
    ],
)
async def test_bad_direct_insert_fails_naming_the_constraint(
    conn: asyncpg.Connection, values: tuple[object, ...], constraint: str
) -> None:
    """Each rule is a named CHECK constraint, so a bad plain-SQL insert says which rule it broke."""
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await conn.execute(INSERT, *values)
    assert caught.value.constraint_name == constraint
    assert f'violates check constraint "{constraint}"' in str(caught.value)
    assert await count(conn) == 0


async def test_limits_themselves_are_allowed(conn: asyncpg.Connection) -> None:
    """The largest allowed values are accepted: 128-character type, 64-character labels, 256 KiB payload."""
    payload = '{"x": "' + "y" * (262_144 - len('{"x": ""}')) + '"}'
    await conn.execute(INSERT, "a." + "b" * 126, "critical", "S" * 64, "T" * 64, payload)
    size = await conn.fetchval("SELECT octet_length(payload::text) FROM events")
    assert size == 262_144


@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ("UPDATE events SET level = 'error'", "UPDATE"),
        ("DELETE FROM events", "DELETE"),
        ("TRUNCATE events", "TRUNCATE"),
        ("UPDATE events SET level = 'error' WHERE id = -1", "UPDATE"),
        ("DELETE FROM events WHERE id = -1", "DELETE"),
    ],
)
async def test_journal_is_append_only(conn: asyncpg.Connection, statement: str, operation: str) -> None:
    """UPDATE, DELETE and TRUNCATE are refused, even when they would touch no row, with a hint."""
    await conn.execute("INSERT INTO events (type) VALUES ('decision.made')")
    with pytest.raises(asyncpg.RaiseError) as caught:
        await conn.execute(statement)
    assert caught.value.message == f"events is append-only: {operation} is not allowed"
    assert caught.value.hint == "append a correcting event instead"
    assert await conn.fetchval("SELECT level FROM events") == "info"


async def test_notification_carries_the_first_id_only_at_commit_while_a_hub_sleeps(
    conn: asyncpg.Connection, db_url: str
) -> None:
    """With a hub asleep, NOTIFY events sends a transaction's first id as text, once, and only when it commits."""
    received: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(db_url)
    try:
        await listener.add_listener("events", lambda *args: received.put_nowait(args[3]))
        await register_hub(listener, "sleeper")
        await set_asleep(listener, "sleeper", True)
        async with conn.transaction():
            await conn.execute("INSERT INTO events (type, payload) VALUES ('order.submitted', '{\"password\": \"x\"}')")
            await conn.execute("INSERT INTO events (type) VALUES ('order.acknowledged')")
        rolled_back = conn.transaction()
        await rolled_back.start()
        await conn.execute("INSERT INTO events (type) VALUES ('order.rejected')")
        await rolled_back.rollback()
        await conn.execute("INSERT INTO events (type) VALUES ('trade.filled')")
        got = [await asyncio.wait_for(received.get(), 10) for _ in range(2)]
        assert got == ["1", "4"]
        # Nothing else: a round trip on the listener delivers anything still pending.
        await listener.execute("SELECT 1")
        assert received.empty()
    finally:
        await listener.close()


async def test_journal_has_one_epoch(conn: asyncpg.Connection) -> None:
    """journal_meta holds exactly one row with a uuid epoch; a second row is refused."""
    rows = await conn.fetch("SELECT epoch, created_at FROM journal_meta")
    assert len(rows) == 1
    assert isinstance(rows[0]["epoch"], uuid.UUID)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute("INSERT INTO journal_meta DEFAULT VALUES")
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("INSERT INTO journal_meta (singleton) VALUES (false)")


async def test_each_new_journal_gets_its_own_epoch(empty_db_url: str, db_url: str, migrations_dir: Path) -> None:
    """Creating the journal anew (a reset) makes a new epoch, so clients can tell the two apart."""
    fresh = await asyncpg.connect(empty_db_url)
    old = await asyncpg.connect(db_url)
    try:
        await apply_migrations(fresh, load_migrations(migrations_dir))
        assert await fresh.fetchval("SELECT epoch FROM journal_meta") != await old.fetchval(
            "SELECT epoch FROM journal_meta"
        )
    finally:
        await fresh.close()
        await old.close()


async def test_type_column_uses_the_c_collation(conn: asyncpg.Connection) -> None:
    """Type prefixes are index ranges only under "C" collation, whatever the database's default is."""
    collation = await conn.fetchval(
        "SELECT collation_name FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'type'"
    )
    assert collation == "C"
