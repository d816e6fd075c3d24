"""The event repository: every statement that reads or writes the journal (docs/20_EVENT_JOURNAL.md#repository)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import asyncpg

from journal_api.journal.frames import Frame, frame_from_row
from journal_api.journal.leaks import LeakLog, OnLeak
from journal_api.journal.models import (
    LEVELS,
    MAX_ID,
    ON_MASK,
    Event,
    EventFilter,
    JsonObject,
    Level,
    NewEvent,
    Page,
    decode_payload,
)
from journal_api.journal.redaction import Mask, redact, redact_text

__all__ = [
    "MAX_LIMIT",
    "Database",
    "FramePage",
    "append_event",
    "event_from_row",
    "journal_state",
    "query_events",
    "read_frames",
    "read_new",
]

MAX_LIMIT = 1000

# The write path's leak log, one per writing process (append_event is a function, not a resource with an owner).
_WRITE_LEAKS = LeakLog()


@dataclass(frozen=True, slots=True)
class FramePage:
    """A page of events as rows, the position to continue from, the horizon it was read up to (``head``) and the
    journal's epoch; for the hub's reads also the sequence's top and the oldest floor held (``None``: none)."""

    rows: list[asyncpg.Record]
    cursor: int
    head: int
    epoch: str
    top: int | None = None
    oldest_floor: int | None = None

    def frames(self, on_leak: OnLeak | None = None) -> Iterator[Frame]:
        """The events' frames, each built when it is taken: a long page need not stop everything else while it is
        built whole. ``on_leak`` is told of each value-shape mask."""
        return map(partial(frame_from_row, on_leak=on_leak), self.rows)


Database = asyncpg.Connection | asyncpg.Pool
"""Anything the repository can run statements on: a connection or a pool."""

_COLUMNS = "id, ts, type, level, public_safe, symbol, trade_id, payload::text AS payload"

# Built from constants only; every value is a bind parameter.
_INSERT = f"""
    INSERT INTO events (type, level, public_safe, symbol, trade_id, payload)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb)
    RETURNING {_COLUMNS}
"""  # noqa: S608

# The rows after a cursor up to a horizon computed before this statement started (docs/20_EVENT_JOURNAL.md#the-
# delivery-horizon: any earlier horizon stays true), with the epoch, so a reader that polls learns of a reset
# journal with no statement of its own.
_PAGE = """
    SELECT m.epoch::text AS epoch, e.*
    FROM journal_meta AS m
    LEFT JOIN LATERAL (
        SELECT {columns} FROM events WHERE id > $1 AND id <= $3{conditions} ORDER BY id LIMIT $2
    ) AS e ON true
    ORDER BY e.id
"""
_HORIZON = "SELECT horizon FROM journal_horizon()"
# The hub's read: horizon, top, oldest floor, epoch and the new rows, in one round trip (migrations/0002).
_READ_NEW = "SELECT * FROM journal_read($1, $2)"
_NO_META = "journal_meta has no row: the journal was not created by `journal migrate`"


def event_from_row(row: asyncpg.Record) -> Event:
    """An event from a row with the repository's columns, redacted again (rows may come from plain SQL)."""
    return Event(
        id=row["id"],
        ts=row["ts"],
        type=row["type"],
        level=row["level"],
        public_safe=row["public_safe"],
        symbol=redact_text(row["symbol"], path="symbol"),
        trade_id=redact_text(row["trade_id"], path="trade_id"),
        payload=redact(decode_payload(row["payload"])),
    )


async def append_event(
    db: Database,
    *,
    type: str,
    payload: JsonObject,
    level: Level = "info",
    public_safe: bool = False,
    symbol: str | None = None,
    trade_id: str | None = None,
) -> Event:
    """Validate, redact and append one event; return it as stored. Raises ``ValidationError`` and writes nothing
    when an argument breaks the journal's rules."""
    masks: list[Mask] = []
    new = NewEvent.model_validate(
        {
            "type": type,
            "payload": payload,
            "level": level,
            "public_safe": public_safe,
            "symbol": symbol,
            "trade_id": trade_id,
        },
        context={ON_MASK: masks.append},
    )
    row = await db.fetchrow(_INSERT, new.type, new.level, new.public_safe, new.symbol, new.trade_id, new.payload_text())
    assert row is not None  # INSERT ... RETURNING always returns the row it inserted
    for mask in masks:  # logged in the writer's process: the stored row holds only the marker
        _WRITE_LEAKS(row["id"], new.type, mask)
    return event_from_row(row)


async def query_events(
    db: Database,
    *,
    limit: int,
    cursor: int | None = None,
    filters: EventFilter | None = None,
    horizon: int | None = None,
) -> Page:
    """The events after ``cursor`` (``None``: from the start) that match ``filters``, in id order, at most
    ``limit`` (1 to 1000), up to the delivery horizon (read first unless given: one read at or after which no
    earlier id can still commit), with the horizon as ``head`` and the position to continue from."""
    start, head, _, rows = await _page(db, limit, cursor, filters, horizon)
    events = [event_from_row(row) for row in rows if row["id"] is not None]
    position = events[-1].id if len(events) == limit else max(start, head)
    return Page(events=events, cursor=position, head=head)


async def read_frames(
    db: Database,
    *,
    limit: int,
    cursor: int,
    filters: EventFilter | None = None,
    horizon: int | None = None,
) -> FramePage:
    """What :func:`query_events` reads, as frames ready to send (the stream's read path), with the epoch."""
    start, head, epoch, rows = await _page(db, limit, cursor, filters, horizon)
    events = [row for row in rows if row["id"] is not None]
    position = events[-1]["id"] if len(events) == limit else max(start, head)
    return FramePage(rows=events, cursor=position, head=head, epoch=epoch)


async def read_new(db: Database, *, limit: int, cursor: int) -> FramePage:
    """The hub's read: a fresh horizon and every event after ``cursor`` up to it (at most ``limit``), in one
    statement. ``cursor`` of the page is where to continue: the last id of a full page, else ``max(cursor, H)``."""
    start = _cursor(cursor)
    _limit(limit)
    rows = await db.fetch(_READ_NEW, start, limit)
    if not rows:
        raise RuntimeError(_NO_META)
    first = rows[0]
    events = [row for row in rows if row["id"] is not None]
    position = events[-1]["id"] if len(events) == limit else max(start, first["horizon"])
    return FramePage(
        rows=events,
        cursor=position,
        head=first["horizon"],
        epoch=first["epoch"],
        top=first["top"],
        oldest_floor=first["oldest_floor"],
    )


async def _page(
    db: Database, limit: int, cursor: int | None, filters: EventFilter | None, horizon: int | None
) -> tuple[int, int, str, list[asyncpg.Record]]:
    _limit(limit)
    start = _cursor(0 if cursor is None else cursor)
    if horizon is None:
        horizon = await db.fetchval(_HORIZON)
    elif not _whole(horizon, 0, MAX_ID):
        raise ValueError(f"horizon must be an event id (a whole number from 0 to {MAX_ID}), got {horizon!r}")
    params: list[object] = [start, limit, horizon]
    conditions = _conditions(filters or EventFilter(), params)
    sql = _PAGE.format(columns=_COLUMNS, conditions="".join(f" AND {c}" for c in conditions))
    rows = await db.fetch(sql, *params)
    if not rows:
        raise RuntimeError(_NO_META)
    return start, horizon, rows[0]["epoch"], rows


def _limit(limit: int) -> None:
    if not _whole(limit, 1, MAX_LIMIT):
        raise ValueError(f"limit must be a whole number between 1 and {MAX_LIMIT}, got {limit!r}")


def _cursor(cursor: object) -> int:
    if not _whole(cursor, 0, MAX_ID):
        raise ValueError(f"cursor must be an event id (a whole number from 0 to {MAX_ID}), got {cursor!r}")
    assert isinstance(cursor, int)
    return cursor


async def journal_state(db: Database) -> tuple[str, int, int]:
    """The journal's epoch, its delivery horizon now, and the top of its sequence (0 when no id was ever drawn;
    a cursor beyond it is not from this journal: every position a reader is given is at most the top)."""
    row = await db.fetchrow(
        "SELECT m.epoch::text AS epoch, h.horizon, h.top FROM journal_meta AS m, journal_horizon() AS h"
    )
    if row is None:
        raise RuntimeError(_NO_META)
    return row["epoch"], row["horizon"], row["top"]


def _whole(value: object, low: int, high: int) -> bool:
    # bool is an int, and a float such as 1.5 would be truncated by the driver: neither is a count or an id.
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _prefix(prefix: str, bind: Callable[[object], str]) -> str:
    """Types starting with ``prefix`` (which ends with "."), as an index range under the "C" collation."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return f"(type >= {bind(prefix)} AND type < {bind(upper)})"


def _literal(constant: object) -> str:
    """A constant of this module as an SQL string literal (never a caller's value: those are bound)."""
    return f"'{constant}'"


def _conditions(filters: EventFilter, params: list[object]) -> list[str]:
    """SQL conditions for a filter; every value is appended to ``params`` and referenced as ``$n``."""

    def bind(value: object) -> str:
        params.append(value)
        return f"${len(params)}::text" if isinstance(value, str) else f"${len(params)}::text[]"

    conditions: list[str] = []
    if filters.channels is not None:
        # The channel prefixes are constants of this module, so they are written into the SQL as literals.
        trades, snapshots = _prefix("trade.", _literal), _prefix("snapshot.", _literal)
        alternatives = {
            "trades": trades,
            "snapshots": snapshots,
            "events": f"NOT ({trades} OR {snapshots})",
        }
        conditions.append("(" + " OR ".join(alternatives[c] for c in dict.fromkeys(filters.channels)) + ")")
    if filters.types is not None:
        exact = [t for t in filters.types if not t.endswith("*")]
        alternatives_t = [_prefix(t[:-1], bind) for t in filters.types if t.endswith("*")]
        if exact:
            alternatives_t.insert(0, f"type = ANY({bind(exact)})")
        conditions.append("(" + " OR ".join(alternatives_t) + ")")
    if filters.symbols is not None:
        conditions.append(f"symbol = ANY({bind(filters.symbols)})")
    if filters.trade_ids is not None:
        conditions.append(f"trade_id = ANY({bind(filters.trade_ids)})")
    if filters.min_level is not None:
        conditions.append(f"level = ANY({bind(list(LEVELS[LEVELS.index(filters.min_level) :]))})")
    return conditions
