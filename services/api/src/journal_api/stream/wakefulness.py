"""Whether the hub is awake, drowsy or asleep, and when it changes (docs/20_EVENT_JOURNAL.md#notify-and-waking-the-
stream-only-when-it-sleeps).

Writers NOTIFY only while some hub's row says it is asleep. Awake, the hub polls the table and writers commit
without PostgreSQL's commit-time NOTIFY lock; asleep, it waits for a NOTIFY. This module decides, after each read,
which it should be; the statements are in :mod:`journal_api.journal.wake`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Literal

import asyncpg

from journal_api.journal.wake import may_sleep, register_hub, set_asleep, sweep_hubs
from journal_api.stream.pace import Pace

__all__ = ["BUSY_NOTIFICATIONS", "BUSY_S", "LINGER_S", "SWEEP_S", "Mode", "Wakefulness"]

LINGER_S = 0.02
"""Awake, the hub tries to sleep after reads have found nothing for this long (not after every empty read: at
2,000 transactions/s that would flap hundreds of times a second)."""
BUSY_NOTIFICATIONS = 8
BUSY_S = 0.01
"""Asleep or drowsy (its row says asleep), :data:`BUSY_NOTIFICATIONS` NOTIFYs within this long (800 notifying
transactions a second) mean the stream is busy: the hub wakes up for good, so that writers stop paying for NOTIFY.
Counted from the NOTIFYs' arrival, not from reads, so a hub slowed by its machine does not take a busy stream for a
quiet one."""
SWEEP_S = 1.0
"""Awake, a hub that NOTIFYs still reach (some row says asleep: another hub's, or a dead one's) sweeps dead hubs'
rows at most this often; registering and every change of its flag sweep too."""

Mode = Literal["awake", "drowsy", "asleep"]


class Wakefulness:
    """One hub's state in the wake protocol.

    Public attributes: ``mode`` (``awake``: its row says awake, it polls; ``drowsy``: its row says asleep, committed,
    but it has not yet checked that nothing was committed without a wake-up; ``asleep``: checked, it waits for a
    NOTIFY), ``sleeps`` (times it fell asleep), ``pace`` (how often it reads while not asleep: calm or busy).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode: Mode = "awake"
        self.sleeps = 0
        self.pace = Pace(0.0)
        self._rows_at = 0.0  # loop time of the last read that found events
        self._notified: deque[float] = deque(maxlen=BUSY_NOTIFICATIONS)  # arrival of the latest NOTIFYs
        self._swept_at = 0.0  # loop time of this hub's latest sweep of dead hubs' rows

    async def start(self, conn: asyncpg.Connection) -> None:
        """Register (again) on a new connection, awake: a crash may have emptied the table, and a hub that has just
        connected has not checked anything."""
        await register_hub(conn, self.name)
        self.mode = "awake"
        self._rows_at = self._swept_at = asyncio.get_running_loop().time()
        self.pace.reset(self._rows_at)

    def notified(self) -> None:
        """A NOTIFY arrived (called from the listener's callback: records the time, nothing else)."""
        self._notified.append(asyncio.get_running_loop().time())

    def poll_s(self) -> float | None:
        """How long the hub may wait for a NOTIFY before it reads anyway (``None``: as long as it takes; the
        hub's watchdog bounds every sleep)."""
        return None if self.mode == "asleep" else self.pace.poll_s

    async def after_read(self, conn: asyncpg.Connection, *, rows: int, delivered: int, held: bool) -> None:
        """Change state after a read that found ``rows`` events: wake up when busy, go to sleep after a quiet
        spell, but never while the horizon is held back (a floor is held, so the check could not pass)."""
        now = asyncio.get_running_loop().time()
        self.pace.delivered(rows, now)
        if self.mode == "awake" and self._notified and self._swept_at < self._notified[-1] and self._sweep_due(now):
            await sweep_hubs(conn)  # a NOTIFY reached an awake hub since its last sweep: some row says asleep
            self._swept_at = now
        if rows:
            if self.mode != "awake" and self._busy(now):
                await self._flag(conn, asleep=False, now=now)
                self.mode = "awake"
            self._rows_at = now
            return
        if held:
            return
        if self.mode == "awake":
            if now - self._rows_at < LINGER_S:
                return
            await self._flag(conn, asleep=True, now=now)  # committed before the check below reads anything
            self.mode = "drowsy"
        if self.mode == "drowsy" and await may_sleep(conn, delivered):
            self.mode = "asleep"
            self.sleeps += 1
            self.pace.reset(now)  # it wakes up calm

    async def _flag(self, conn: asyncpg.Connection, *, asleep: bool, now: float) -> None:
        await set_asleep(conn, self.name, asleep)  # sweeps too
        self._swept_at = now

    def _sweep_due(self, now: float) -> bool:
        return now - self._swept_at >= SWEEP_S

    def _busy(self, now: float) -> bool:
        return len(self._notified) == BUSY_NOTIFICATIONS and now - self._notified[0] < BUSY_S
