"""The delivery horizon's checks and diagnostics (docs/20_EVENT_JOURNAL.md#the-delivery-horizon).

The horizon itself is read by the repository (``read_new``, ``query_events``); this module holds what a reader
checks before it trusts it, and what an operator is told when a transaction holds it back.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

__all__ = [
    "FLOOR_KEY_BASE",
    "Holder",
    "HorizonUnusableError",
    "check_horizon",
    "count_held_rows",
    "describe_holder",
    "holder_of",
]

FLOOR_KEY_BASE = 0x4A46 << 48
"""A floor lock's advisory key is this plus the floor (migrations/0002_horizon.sql)."""

_HELD_COUNT_CAP = 100_000  # counting is an index range scan: bounded, so a long hold does not make it slow


class HorizonUnusableError(RuntimeError):
    """The database cannot give a trustworthy horizon; the message says what to change."""


# The first reason the horizon cannot be trusted here, or NULL: each is a way to lose rows
# (docs/20_EVENT_JOURNAL.md#the-delivery-horizon).
_CHECK = """
    SELECT CASE
        WHEN to_regclass('events_id_seq') IS NULL
            THEN 'the journal''s tables are missing; run `journal migrate` first'
        WHEN to_regprocedure('journal_read(bigint, integer)') IS NULL
            THEN 'the journal lacks migration 0002_horizon.sql; run `journal migrate` first'
        WHEN to_regclass('journal_hubs') IS NULL
            THEN 'the journal lacks migration 0003_wake.sql; run `journal migrate` first'
        WHEN (SELECT seqcache FROM pg_sequence WHERE seqrelid = to_regclass('events_id_seq')) <> 1
            THEN format('events_id_seq has CACHE %s, and the delivery horizon needs CACHE 1 (a cached id can be '
                        'handed out below another writer''s floor): run ALTER SEQUENCE events_id_seq CACHE 1',
                        (SELECT seqcache FROM pg_sequence WHERE seqrelid = to_regclass('events_id_seq')))
        WHEN current_setting('transaction_isolation') <> 'read committed'
            THEN format('the journal is read under %s, and the horizon needs READ COMMITTED: set '
                        'default_transaction_isolation = ''read committed'' for the server''s role',
                        upper(current_setting('transaction_isolation')))
        WHEN pg_is_in_recovery()
            THEN 'DATABASE_URL names a standby: the horizon can only be read on the primary'
    END
"""


async def check_horizon(conn: asyncpg.Connection) -> None:
    """Refuse a journal whose horizon could skip rows: one not migrated (or without 0002), a cached sequence, a
    connection outside READ COMMITTED, or a standby (advisory locks are not replicated)."""
    problem = await conn.fetchval(_CHECK)
    if problem is not None:
        raise HorizonUnusableError(problem)


async def count_held_rows(conn: asyncpg.Connection, horizon: int) -> int:
    """Committed rows above the horizon (waiting for an older transaction to end), counted up to 100,000."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE id > $1 LIMIT $2) AS held", horizon, _HELD_COUNT_CAP
    )
    return count


@dataclass(frozen=True, slots=True)
class Holder:
    """The transaction whose floor holds the horizon back, as an operator can find it (never its query)."""

    pid: int | None  # None: a prepared transaction
    application_name: str | None
    age_s: float | None
    prepared_gid: str | None


_HOLDER = """
    SELECT l.pid, a.application_name,
           extract(epoch FROM now() - coalesce(a.xact_start, p.prepared))::float8 AS age_s,
           p.gid
    FROM pg_locks AS l
    LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
    LEFT JOIN pg_locks AS x  -- a prepared transaction keeps its virtual id and its xid lock, with no pid
        ON l.pid IS NULL AND x.pid IS NULL AND x.locktype = 'transactionid'
        AND x.virtualtransaction = l.virtualtransaction
    LEFT JOIN pg_prepared_xacts AS p ON p.transaction = x.transactionid
    WHERE l.locktype = 'advisory' AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid
    LIMIT 1
"""


def describe_holder(holder: Holder | None) -> str:
    """For the log: which backend (or prepared transaction) to look at, and for how long."""
    if holder is None:
        return "a transaction that has ended"
    age = "unknown" if holder.age_s is None else f"{holder.age_s:.1f} s"
    if holder.pid is None:
        return f"prepared transaction {holder.prepared_gid!r} (prepared {age} ago)"
    return f"pid {holder.pid} (application_name {holder.application_name!r}, transaction open {age})"


async def holder_of(conn: asyncpg.Connection, floor: int) -> Holder | None:
    """Who holds the floor lock ``floor`` now, or ``None`` when nobody does any more."""
    row = await conn.fetchrow(_HOLDER, FLOOR_KEY_BASE + floor)
    if row is None:
        return None
    return Holder(pid=row["pid"], application_name=row["application_name"], age_s=row["age_s"], prepared_gid=row["gid"])
