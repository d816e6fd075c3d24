"""The hubs' side of waking the stream only when it sleeps (docs/20_EVENT_JOURNAL.md#waking-the-stream).

Writers NOTIFY only while some hub is marked asleep in ``journal_hubs``; these are the statements a hub runs to
say whether it sleeps, and to check, before it does, that no committed row would be left without a wake-up.
"""

from __future__ import annotations

import asyncpg

__all__ = ["forget_hub", "may_sleep", "register_hub", "set_asleep", "sweep_hubs"]

# A row whose backend is gone (its hub died) is swept whenever a hub registers or changes its flag, and by an awake
# hub that NOTIFYs still reach: a dead hub left asleep would make every writer notify for good. A backend whose
# start another role may not see counts as alive (never sweep a live hub's row).
_SWEEP = """
    DELETE FROM journal_hubs AS h
    WHERE NOT EXISTS (
        SELECT 1 FROM pg_stat_activity AS a
        WHERE a.pid = h.pid AND (a.backend_start = h.backend_start OR a.backend_start IS NULL)
    )
"""

_REGISTER = f"""
    WITH swept AS ({_SWEEP})
    INSERT INTO journal_hubs (name, pid, backend_start, asleep)
    SELECT $1, a.pid, a.backend_start, false FROM pg_stat_activity AS a WHERE a.pid = pg_backend_pid()
    ON CONFLICT (name) DO UPDATE
        SET pid = excluded.pid, backend_start = excluded.backend_start, asleep = false, changed_at = now()
"""  # noqa: S608 - built from constants only

_SET = f"""
    WITH swept AS ({_SWEEP})
    UPDATE journal_hubs SET asleep = $2, changed_at = now() WHERE name = $1 RETURNING 1
"""  # noqa: S608 - built from constants only


async def register_hub(conn: asyncpg.Connection, name: str) -> None:
    """Upsert this hub's row, awake, for the backend of ``conn`` (its LISTEN connection)."""
    await conn.execute(_REGISTER, name)


async def set_asleep(conn: asyncpg.Connection, name: str, asleep: bool) -> None:
    """Commit this hub's flag; a row that vanished (a crash empties the table) is made again, awake, and then set."""
    if await conn.fetchval(_SET, name, asleep) is None:
        await register_hub(conn, name)
        await conn.fetchval(_SET, name, asleep)


async def sweep_hubs(conn: asyncpg.Connection) -> None:
    """Delete the rows of hubs whose backend is gone."""
    await conn.execute(_SWEEP)


async def may_sleep(conn: asyncpg.Connection, delivered: int) -> bool:
    """Whether a hub whose "asleep" is committed may now wait for a NOTIFY: no floor is held, and then the
    sequence's top is ``delivered`` (every id handed out was delivered, or was rolled back)."""
    allowed: bool = await conn.fetchval("SELECT journal_may_sleep($1)", delivered)
    return allowed


async def forget_hub(conn: asyncpg.Connection, name: str) -> None:
    """Remove this hub's row (a clean shutdown)."""
    await conn.execute("DELETE FROM journal_hubs WHERE name = $1", name)
