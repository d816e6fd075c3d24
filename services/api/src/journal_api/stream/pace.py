"""How often an awake hub reads by itself: every 1 ms while the journal is calm, every 10 ms while it is busy
(docs/20_EVENT_JOURNAL.md#notify-and-waking-the-stream-only-when-it-sleeps, *Pace*).

Each read has a fixed cost in the server and its database backend (a statement, a round trip, a scan of ``pg_locks``).
When the journal is busy a read every 1 ms costs the writers more than it buys the readers; a read every 10 ms
carries 25 events or more.
"""

from __future__ import annotations

__all__ = ["BUSY_POLL_S", "BUSY_RATE", "CALM_POLL_S", "CALM_RATE", "WINDOW_S", "Pace"]

CALM_POLL_S = 0.001
"""Awake, while the journal is calm, the hub reads this often."""
BUSY_POLL_S = 0.01
"""Awake, while the journal is busy, the hub reads this often."""
BUSY_RATE = 3_000.0
"""Events delivered per second, over one window, from which a calm journal counts as busy."""
CALM_RATE = 2_500.0
"""Events delivered per second, over one window, under which a busy journal counts as calm again (the gap keeps a
rate near one threshold from flipping the pace at every window)."""
WINDOW_S = 0.25
"""The rate is judged over windows at least this long: long enough that a writer catching up after a stall of a few
tens of milliseconds (2,000 events a second with a burst) does not count as busy."""


class Pace:
    """The delivery rate of the current window and the pace it sets. Public attribute: ``busy``."""

    def __init__(self, now: float) -> None:
        self.busy = False
        self._since = now  # when the current window began (loop time)
        self._rows = 0  # events delivered since then

    @property
    def poll_s(self) -> float:
        return BUSY_POLL_S if self.busy else CALM_POLL_S

    def delivered(self, rows: int, now: float) -> None:
        """A read delivered ``rows`` events at ``now``; once the window is :data:`WINDOW_S` long, judge its rate
        and start the next."""
        self._rows += rows
        elapsed = now - self._since
        if elapsed >= WINDOW_S:
            self.busy = self._rows / elapsed >= (CALM_RATE if self.busy else BUSY_RATE)
            self._since, self._rows = now, 0

    def reset(self, now: float) -> None:
        """Calm, with a new window from ``now`` (a hub that connects, or falls asleep)."""
        self.busy = False
        self._since, self._rows = now, 0
