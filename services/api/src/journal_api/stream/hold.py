"""What holds the delivery horizon back, followed for operators (docs/50_OPERATIONS.md#a-held-back-stream)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from journal_api.journal.horizon import count_held_rows, describe_holder, holder_of
from journal_api.journal.repository import FramePage

__all__ = ["YOUNG_S", "Hold", "follow_hold"]

_COUNT_EVERY_S = 1.0  # while held back, committed rows above the horizon are counted at most this often
YOUNG_S = 0.02
"""A hold younger than this is what a busy journal looks like (some writer is nearly always in flight, and the oldest
floor changes with every read): the hub polls it at its awake pace and does not count the rows behind it."""
_log = logging.getLogger("journal_api.hub")  # the hub's lines, whichever module writes them


class Hold:
    """The delivery horizon held back by an in-flight transaction."""

    def __init__(self, floor: int, since: float) -> None:
        self.floor = floor  # the oldest floor: the transaction holding the horizon back
        self.since = since  # loop time the hub first saw this floor hold the horizon back
        self.rows = 0  # committed rows above the horizon, at the last count
        self.counted_at: float | None = None
        self.reported = False


async def follow_hold(
    hold: Hold | None, listener: asyncpg.Connection, page: FramePage, *, log_after_s: float
) -> Hold | None:
    """The hold after the hub's read ``page`` (``None``: nothing holds the horizon back): how long, how many
    committed rows wait (counted once a second once it is :data:`YOUNG_S` old), and once, past ``log_after_s``,
    who holds it, never what it runs."""
    assert page.top is not None  # the hub's reads report the top
    if page.oldest_floor is None or page.top <= page.head:
        return None
    now = asyncio.get_running_loop().time()
    if hold is None or hold.floor != page.oldest_floor:
        hold = Hold(page.oldest_floor, now)
    if now - hold.since < YOUNG_S:
        return hold
    report = not hold.reported and now - hold.since >= log_after_s
    if report or hold.counted_at is None or now - hold.counted_at >= _COUNT_EVERY_S:
        hold.rows = await count_held_rows(listener, page.head)
        hold.counted_at = now
    if report:
        hold.reported = True
        holder = await holder_of(listener, hold.floor)  # None when it has ended since
        _log.warning(
            "delivery is held back at %d by %s for %.1f s; %d committed events wait for it to end",
            page.head,
            describe_holder(holder),
            now - hold.since,
            hold.rows,
        )
    return hold
