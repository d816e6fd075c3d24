"""Migration 0005 drops 0001's per-row trigger, which does nothing since 0003, while the engine writes: it never
holds writers up for more than one short lock wait, and gives up cleanly when the table is never free
(docs/20_EVENT_JOURNAL.md#notify-and-waking-the-stream-only-when-it-sleeps, "The old per-row trigger")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from journal_api.journal.migrations import Migration, MigrationError, apply_migrations, load_migrations

from .test_ws_recovery import until

INSERT = "INSERT INTO events (type) VALUES ('order.submitted') RETURNING id"
DROP = "0005_drop_notify_trigger.sql"


async def triggers(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal ORDER BY tgname"
    )
    return [row["tgname"] for row in rows]


async def versions(conn: asyncpg.Connection) -> list[str]:
    return [row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]


def up_to(migrations_dir: Path, version: str) -> list[Migration]:
    migrations = load_migrations(migrations_dir)
    return migrations[: [m.version for m in migrations].index(version) + 1]


async def drop_waiting(conn: asyncpg.Connection) -> bool:
    """Whether some backend is waiting for the ACCESS EXCLUSIVE lock on events (an attempt of the drop)."""
    waiting: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'events'::regclass "
        "AND mode = 'AccessExclusiveLock' AND NOT granted)"
    )
    return waiting


async def test_the_drop_waits_for_a_free_moment_while_other_writers_keep_committing(
    empty_db_url: str, migrations_dir: Path
) -> None:
    """A transaction that wrote an event keeps events busy: the drop retries, writers that come meanwhile commit
    (each waits out one attempt at most, never the open transaction), and once it ends the trigger is gone."""
    admin, holder, other = [await asyncpg.connect(empty_db_url) for _ in range(3)]
    try:
        migrations = up_to(migrations_dir, DROP)
        await apply_migrations(admin, migrations[:-1])
        assert await triggers(other) == ["events_append_only", "events_assign_id", "events_notify"]
        transaction = holder.transaction()
        await transaction.start()
        assert await holder.fetchval(INSERT) == 1
        migrating = asyncio.create_task(apply_migrations(admin, migrations))
        await until(lambda: drop_waiting(other), "the migration waited for the lock on events")
        # A drop that waited for the lock without a timeout would queue these behind it until the holder ends.
        assert [await asyncio.wait_for(other.fetchval(INSERT), 30) for _ in range(3)] == [2, 3, 4]
        await until(lambda: drop_waiting(other), "the migration tried again")
        assert not migrating.done()
        await transaction.commit()
        assert await asyncio.wait_for(migrating, 30) == [DROP]
        assert await triggers(other) == ["events_append_only", "events_assign_id"]
        assert await other.fetchval("SELECT to_regprocedure('events_notify()')") is None
        assert await other.fetchval(INSERT) == 5
        assert await other.fetchval("SELECT array_agg(id ORDER BY id) FROM events") == [1, 2, 3, 4, 5]
    finally:
        for conn in (admin, holder, other):
            await conn.close()


async def test_the_drop_gives_up_and_changes_nothing_when_events_is_never_free(
    empty_db_url: str, migrations_dir: Path
) -> None:
    """Held busy through every attempt, the migration fails with what to do; run again later, it applies."""
    admin, holder = [await asyncpg.connect(empty_db_url) for _ in range(2)]
    try:
        migrations = up_to(migrations_dir, DROP)
        await apply_migrations(admin, migrations[:-1])
        transaction = holder.transaction()
        await transaction.start()
        await holder.fetchval(INSERT)
        with pytest.raises(
            MigrationError,
            match=(
                rf"^{DROP} failed and changed nothing: could not drop the trigger events_notify: events was never "
                r"free for 50 ms in 20 tries over 5 s \(hint: a long or prepared transaction that wrote events "
                r"holds it \(see pg_locks\); end it, or run `journal migrate` again at a quieter moment\)$"
            ),
        ) as raised:
            await asyncio.wait_for(apply_migrations(admin, migrations), 60)
        assert isinstance(raised.value.__cause__, asyncpg.RaiseError)
        assert DROP not in await versions(admin)
        assert "events_notify" in await triggers(admin)
        await transaction.commit()
        assert await asyncio.wait_for(apply_migrations(admin, migrations), 30) == [DROP]
        assert "events_notify" not in await triggers(admin)
    finally:
        for conn in (admin, holder):
            await conn.close()
