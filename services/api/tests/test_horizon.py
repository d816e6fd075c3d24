"""The delivery horizon: no writer waits for another, and a cursor never skips a late commit
(docs/20_EVENT_JOURNAL.md#the-delivery-horizon)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from journal_api.journal.horizon import (
    Holder,
    HorizonUnusableError,
    check_horizon,
    count_held_rows,
    describe_holder,
    holder_of,
)
from journal_api.journal.migrations import apply_migrations, load_migrations
from journal_api.journal.repository import query_events, read_new

INSERT = "INSERT INTO events (type) VALUES ('order.submitted') RETURNING id"
FLOOR_LOCKS = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND (classid::bigint >> 16) = 19014
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


@pytest.fixture
async def three(db_url: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection]]:
    """Two writers and a reader on the same journal."""
    conns = [await asyncpg.connect(db_url) for _ in range(3)]
    yield conns[0], conns[1], conns[2]
    for conn in conns:
        await conn.close()


async def delivered(reader: asyncpg.Connection, cursor: int = 0) -> tuple[list[int], int]:
    """What a paging reader gets after ``cursor`` now: the ids and the position to continue from."""
    page = await query_events(reader, limit=100, cursor=cursor)
    return [event.id for event in page.events], page.cursor


async def horizon_of(reader: asyncpg.Connection) -> dict[str, int | None]:
    """journal_horizon() as read now."""
    return dict(await reader.fetchrow("SELECT * FROM journal_horizon()") or {})


async def test_plain_sequence_lets_a_paging_reader_skip_a_late_commit(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """The failure the horizon prevents, shown on a scratch table with a plain sequence: row 1 is never read."""
    first, second, reader = three
    await reader.execute("CREATE TABLE scratch (id bigserial PRIMARY KEY, type text NOT NULL)")
    transaction = first.transaction()
    await transaction.start()
    await first.execute("INSERT INTO scratch (type) VALUES ('order.submitted')")  # takes id 1, not committed
    await second.execute("INSERT INTO scratch (type) VALUES ('order.submitted')")  # takes id 2, commits at once
    seen = [row["id"] for row in await reader.fetch("SELECT id FROM scratch WHERE id > 0 ORDER BY id")]
    cursor = seen[-1]
    await transaction.commit()
    seen += [row["id"] for row in await reader.fetch("SELECT id FROM scratch WHERE id > $1 ORDER BY id", cursor)]
    everything = [row["id"] for row in await reader.fetch("SELECT id FROM scratch ORDER BY id")]
    assert seen == [2]
    assert everything == [1, 2]


async def test_a_writer_never_waits_for_an_open_transaction_and_is_held_back_until_it_ends(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """A holds id 1 open; B's insert of id 2 commits at once; a reader gets nothing until A commits, then 1, 2."""
    first, second, reader = three
    transaction = first.transaction()
    await transaction.start()
    assert await first.fetchval(INSERT) == 1
    assert await asyncio.wait_for(second.fetchval(INSERT), 30) == 2  # no lock wait: A is still open
    assert await reader.fetchval("SELECT count(*) FROM events") == 1  # B committed; A has not
    assert await delivered(reader) == ([], 0)
    assert await horizon_of(reader) == {"horizon": 0, "top": 2, "oldest_floor": 0}
    await transaction.commit()
    assert await delivered(reader) == ([1, 2], 2)


async def test_a_rolled_back_transaction_releases_the_horizon(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """A rolls back: the event B committed after it is delivered, and A's id stays a gap."""
    first, second, reader = three
    transaction = first.transaction()
    await transaction.start()
    await first.fetchval(INSERT)
    await second.fetchval(INSERT)
    assert await delivered(reader) == ([], 0)
    await transaction.rollback()
    assert await delivered(reader) == ([2], 2)


async def test_a_savepoint_rolled_back_with_the_first_insert_takes_a_new_floor(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """The floor taken inside a rolled-back savepoint goes with it; the next insert takes one again, above B."""
    first, second, reader = three
    outer = first.transaction()
    await outer.start()
    savepoint = first.transaction()
    await savepoint.start()
    assert await first.fetchval(INSERT) == 1
    await savepoint.rollback()
    assert await first.fetchval(FLOOR_LOCKS) == 0
    assert await second.fetchval(INSERT) == 2
    assert await delivered(reader) == ([2], 2)  # nothing holds the horizon: A has no floor now
    assert await first.fetchval(INSERT) == 3
    assert await first.fetchval(FLOOR_LOCKS) == 1
    assert await horizon_of(reader) == {"horizon": 2, "top": 3, "oldest_floor": 2}
    await outer.commit()
    assert await delivered(reader, 2) == ([3], 3)


async def test_a_savepoint_rolled_back_after_the_first_insert_keeps_the_floor(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """A floor taken before the savepoint outlives its rollback: B's later event stays held back behind A."""
    first, second, reader = three
    outer = first.transaction()
    await outer.start()
    assert await first.fetchval(INSERT) == 1
    savepoint = first.transaction()
    await savepoint.start()
    assert await first.fetchval(INSERT) == 2
    await savepoint.rollback()
    assert await second.fetchval(INSERT) == 3
    assert await delivered(reader) == ([], 0)
    await outer.commit()
    assert await delivered(reader) == ([1, 3], 3)


async def test_a_multi_row_statement_takes_one_floor_and_consecutive_ids(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """Five rows in one INSERT: one floor lock, ids 1 to 5 in insert order."""
    first, _, reader = three
    async with first.transaction():
        rows = await first.fetch(
            "INSERT INTO events (type, symbol) SELECT 'order.submitted', 'S' || n FROM generate_series(1, 5) AS n "
            "RETURNING id, symbol"
        )
        assert await first.fetchval(FLOOR_LOCKS) == 1
    assert [(row["id"], row["symbol"]) for row in rows] == [(n, f"S{n}") for n in range(1, 6)]
    assert await delivered(reader) == ([1, 2, 3, 4, 5], 5)


async def test_a_repeatable_read_writer_is_held_back_like_any_other(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """Writers may use any isolation level: the floor does not depend on the writer's snapshot."""
    first, second, reader = three
    transaction = first.transaction(isolation="repeatable_read")
    await transaction.start()
    await first.fetchval("SELECT count(*) FROM events")  # the snapshot is taken before B's commit
    await second.fetchval(INSERT)
    assert await first.fetchval(INSERT) == 2
    assert await delivered(reader) == ([1], 1)
    await transaction.commit()
    assert await delivered(reader, 1) == ([2], 2)


async def prepared_transactions_enabled(conn: asyncpg.Connection) -> None:
    setting = int(await conn.fetchval("SHOW max_prepared_transactions"))
    assert setting > 0, "the test server needs max_prepared_transactions > 0 (the embedded one is configured so)"


async def test_a_declared_prepared_transaction_holds_the_horizon_until_commit_prepared(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """SET LOCAL journal.two_phase = on, insert, PREPARE: the floor stays with the prepared transaction (no pid)
    until COMMIT PREPARED, and no later event is delivered before it."""
    first, second, reader = three
    await prepared_transactions_enabled(reader)
    await first.execute("BEGIN; SET LOCAL journal.two_phase = on")
    assert await first.fetchval(INSERT) == 1
    await first.execute("PREPARE TRANSACTION 'journal-horizon-test'")
    try:
        assert await second.fetchval(INSERT) == 2
        assert await delivered(reader) == ([], 0)
        holder = await holder_of(reader, 0)
        assert holder is not None
        assert (holder.pid, holder.prepared_gid) == (None, "journal-horizon-test")
        assert describe_holder(holder).startswith("prepared transaction 'journal-horizon-test' (prepared ")
    finally:
        await reader.execute("COMMIT PREPARED 'journal-horizon-test'")
    assert await delivered(reader) == ([1, 2], 2)


async def test_an_undeclared_prepared_transaction_always_fails(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """Without the declaration, PREPARE TRANSACTION is refused, and nothing is written."""
    first, _, reader = three
    await prepared_transactions_enabled(reader)
    await first.execute("BEGIN")
    await first.fetchval(INSERT)
    with pytest.raises(asyncpg.FeatureNotSupportedError, match="cannot PREPARE"):
        await first.execute("PREPARE TRANSACTION 'journal-horizon-undeclared'")
    assert await reader.fetchval("SELECT count(*) FROM events") == 0
    assert await reader.fetchval("SELECT count(*) FROM pg_prepared_xacts") == 0


async def test_the_horizon_is_refused_outside_read_committed(conn: asyncpg.Connection) -> None:
    """One snapshot for the whole read would see rows as of before the lock read: other levels are refused."""
    async with conn.transaction(isolation="repeatable_read"):
        with pytest.raises(asyncpg.RaiseError, match="READ COMMITTED, not repeatable read"):
            await conn.fetchrow("SELECT * FROM journal_horizon()")


async def test_read_new_returns_horizon_top_floor_and_rows(
    three: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Connection],
) -> None:
    """The hub's one-statement read: rows up to the horizon, the top and the floor that holds it back."""
    first, second, reader = three
    await second.fetchval(INSERT)
    transaction = first.transaction()
    await transaction.start()
    await first.fetchval(INSERT)
    await second.fetchval(INSERT)
    page = await read_new(reader, limit=10, cursor=0)
    assert ([row["id"] for row in page.rows], page.cursor, page.head, page.top, page.oldest_floor) == ([1], 1, 1, 3, 1)
    assert await count_held_rows(reader, page.head) == 1
    holder = await holder_of(reader, 1)
    assert holder is not None
    assert holder.pid == first.get_server_pid()
    await transaction.rollback()
    page = await read_new(reader, limit=1, cursor=1)
    assert ([row["id"] for row in page.rows], page.cursor, page.head, page.oldest_floor) == ([3], 3, 3, None)
    assert await holder_of(reader, 1) is None
    assert describe_holder(None) == "a transaction that has ended"
    with pytest.raises(ValueError, match="cursor must be an event id"):
        await read_new(reader, limit=1, cursor=-1)


async def test_query_events_refuses_a_bad_horizon(conn: asyncpg.Connection) -> None:
    """A horizon given by the caller is an id like a cursor."""
    with pytest.raises(ValueError, match="horizon must be an event id"):
        await query_events(conn, limit=1, horizon=-1)
    assert (await query_events(conn, limit=1, horizon=0)).head == 0


async def test_a_cached_sequence_is_refused(conn: asyncpg.Connection) -> None:
    """CACHE 20 would hand out ids below another writer's floor: the check names the fix."""
    await check_horizon(conn)
    await conn.execute("ALTER SEQUENCE events_id_seq CACHE 20")
    with pytest.raises(HorizonUnusableError, match=r"CACHE 20.*ALTER SEQUENCE events_id_seq CACHE 1"):
        await check_horizon(conn)


async def test_a_journal_without_0002_or_read_committed_is_refused(empty_db_url: str, migrations_dir: Path) -> None:
    """A journal at 0001 has no horizon; a session that defaults to another isolation level cannot read one."""
    conn = await asyncpg.connect(empty_db_url)
    try:
        await apply_migrations(conn, load_migrations(migrations_dir)[:1])
        with pytest.raises(HorizonUnusableError, match=r"lacks migration 0002_horizon\.sql; run `journal migrate`"):
            await check_horizon(conn)
        await apply_migrations(conn, load_migrations(migrations_dir))
        await conn.execute("SET default_transaction_isolation = 'serializable'")
        with pytest.raises(HorizonUnusableError, match="under SERIALIZABLE"):
            await check_horizon(conn)
    finally:
        await conn.close()


async def test_0002_applies_while_an_old_trigger_transaction_is_open_and_loses_nothing(
    empty_db_url: str, migrations_dir: Path
) -> None:
    """A transaction that drew an id under 0001's lock keeps the horizon at 0 after 0002 lands, even when it goes
    on to insert under the new trigger; writers under the new trigger do not wait for it."""
    migrations = load_migrations(migrations_dir)
    admin, old, new, reader = [await asyncpg.connect(empty_db_url) for _ in range(4)]
    try:
        await apply_migrations(admin, migrations[:1])
        transaction = old.transaction()
        await transaction.start()
        assert await old.fetchval(INSERT) == 1  # holds 0001's exclusive lock
        assert await asyncio.wait_for(apply_migrations(admin, migrations[:2]), 30) == ["0002_horizon.sql"]
        assert await asyncio.wait_for(new.fetchval(INSERT), 30) == 2  # the new trigger: no wait
        assert await delivered(reader) == ([], 0)
        assert await old.fetchval(INSERT) == 3  # the same transaction, now under the new trigger
        assert await delivered(reader) == ([], 0)
        await transaction.commit()
        assert await delivered(reader) == ([1, 2, 3], 3)
    finally:
        for conn in (admin, old, new, reader):
            await conn.close()


def test_a_holder_whose_transaction_age_is_hidden_is_described_without_it() -> None:
    """pg_stat_activity hides other roles' transaction start from a role without pg_read_all_stats."""
    hidden = Holder(pid=4242, application_name=None, age_s=None, prepared_gid=None)
    assert describe_holder(hidden) == "pid 4242 (application_name None, transaction open unknown)"
