"""The hub: one fetcher on the LISTEN connection (``listener.py``), and a buffer of recent rows shared by every
live session.

NOTIFY is a wake-up, the table is the truth: the fetcher always reads the rows after its own position, so a lost
notification costs latency, never an event (docs/30_WS_PROTOCOL.md#how-the-server-keeps-the-promise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable

from journal_api.journal.frames import Frame
from journal_api.journal.repository import read_new
from journal_api.journal.wake import forget_hub
from journal_api.stream.hold import YOUNG_S, Hold, follow_hold
from journal_api.stream.listener import DATABASE_ERRORS, LISTENER_NAME, Backoff, Listener
from journal_api.stream.metrics import Metrics
from journal_api.stream.wakefulness import Wakefulness

__all__ = ["Hub"]

_FETCH_LIMIT = 1000
_READ_TIMEOUT_S = 30.0  # a statement that takes longer means a connection that no longer answers (as the pool's)
HELD_POLL_S = 0.025
"""Behind a transaction that stays open (or while asleep), the hub re-reads this often: a rolled-back transaction
sends no NOTIFY."""
_log = logging.getLogger("journal_api.hub")


Push = Callable[[list[Frame], int, int], int | None]
"""A session's way to take new frames at once: ``push(frames, old_head, new_head)`` writes those its client wants
and returns how many, or returns ``None`` and the hub wakes the session instead."""


def _frame_id(frame: Frame) -> int:
    return frame.id


def _first(pair: tuple[int, float]) -> int:
    return pair[0]


class Hub:
    """Fans new events out to sessions.

    Public attributes: ``epoch`` (the journal's), ``floor`` and ``head`` (every event with ``floor < id <= head``
    is in the buffer; ``head`` is the delivery horizon, never above it), ``generation`` (bumped whenever the
    journal was found reset: sessions of an older generation must restart), ``closed``, ``listener_connects``,
    ``hold`` (``None``, or what holds the horizon back), ``wakefulness`` (awake, drowsy or asleep),
    ``notifications`` (NOTIFYs received: one per notifying transaction).
    """

    def __init__(
        self,
        dsn: str,
        *,
        buffer_rows: int,
        check_interval_s: float,
        held_log_s: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.epoch = ""
        self.floor = 0
        self.head = 0
        self.generation = 0
        self.closed = False
        self.hold: Hold | None = None
        self.wakefulness = Wakefulness(f"{LISTENER_NAME}-{uuid.uuid4()}")  # unique per process
        self.notifications = 0
        self._held_log_s = held_log_s
        self._buffer_rows = buffer_rows
        self._check_interval_s = check_interval_s
        self._rows: list[Frame] = []
        self._offset = 0  # rows before this index were evicted; compacted now and then
        # (newest id of a delivery, when the hub noticed it), oldest first, for the lag metric; trimmed with the rows
        self._noticed: list[tuple[int, float]] = []
        self._notified_at: float | None = None  # the first NOTIFY since the last read began
        self._metrics = metrics
        self._waiters: dict[asyncio.Event, Push] = {}
        self._wake = asyncio.Event()
        self._fetched = False
        self._listener = Listener(dsn, self.wakefulness, on_notify=self._on_notify, on_lost=self._wake.set)
        self._tasks: list[asyncio.Task[None]] = []

    # public methods

    async def start(self) -> None:
        """Connect the listener and take the journal's head as the starting position. Fails if the database
        cannot be reached, so the server does not start half-blind."""
        try:
            await self._listener.connect()
            assert self._listener.connection is not None
            page = await read_new(self._listener.connection, limit=1, cursor=0)
            self.epoch, self.head = page.epoch, page.head
        except BaseException:
            await self._listener.drop()
            raise
        self.floor = self.head
        self._tasks = [
            asyncio.create_task(self._fetch_forever(), name="journal-hub-fetch"),
            asyncio.create_task(self._watch_forever(), name="journal-hub-watch"),
        ]

    async def close(self) -> None:
        """Stop the tasks, drop the listener, and wake every session so it sees ``closed``."""
        self.closed = True
        self._notify_waiters()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        connection = self._listener.connection
        if connection is not None and self._listener.up:  # the check narrows the type for the call
            with contextlib.suppress(*DATABASE_ERRORS):
                await forget_hub(connection, self.wakefulness.name)  # else swept once its backend is gone
        await self._listener.drop()

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up (not lost, not being replaced, hub not closed)."""
        return self._listener.up and not self.closed

    @property
    def listener_connects(self) -> int:
        """How many times the LISTEN connection was made (the first connect included)."""
        return self._listener.connects

    def waiter(self, push: Push) -> asyncio.Event:
        """An event the hub sets whenever the buffer or the hub's state changes, unless ``push`` took the new frames
        itself; :meth:`forget` it when done."""
        waiter = asyncio.Event()
        self._waiters[waiter] = push
        return waiter

    def listen(self, channel: str, callback: Callable[[str | None], None]) -> None:
        """Also LISTEN on ``channel`` (call before :meth:`start`): ``callback(payload)`` for each notification, and
        ``callback(None)`` after every (re)connect, since notifications sent while the hub was deaf are lost.
        Callbacks must not block."""
        self._listener.listen(channel, callback)

    def forget(self, waiter: asyncio.Event) -> None:
        self._waiters.pop(waiter, None)

    def read_now(self) -> None:
        """Read the journal at once (a subscriber read an epoch the hub does not have yet: the read notices it)."""
        self._wake.set()

    @property
    def buffered_rows(self) -> int:
        return len(self._rows) - self._offset

    def noticed_at(self, event_id: int) -> float:
        """When the hub noticed the buffered event ``event_id`` (loop time): from its NOTIFY, or the read that found
        it. Only for an event :meth:`rows_after` just returned (no await between): a reset empties the record."""
        index = bisect_left(self._noticed, event_id, key=_first)
        return self._noticed[min(index, len(self._noticed) - 1)][1]

    def rows_after(self, cursor: int) -> tuple[list[Frame], int] | None:
        """The buffered rows after ``cursor`` and the head they reach, or ``None`` when ``cursor`` is older than
        the buffer (the caller must read the database)."""
        if cursor < self.floor:
            return None
        index = bisect_right(self._rows, cursor, lo=self._offset, key=_frame_id)
        return self._rows[index:], self.head

    # private methods

    def _on_notify(self) -> None:
        # Never trusted as data (the table is): only a wake-up. Callbacks must not block.
        self.notifications += 1
        self.wakefulness.notified()
        if self._notified_at is None:
            self._notified_at = asyncio.get_running_loop().time()
        self._wake.set()

    def _notify_waiters(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    def _deliver(self, frames: list[Frame], old_head: int, noticed: float) -> None:
        """Hand new frames to every session: pushed at once to those waiting for them, a wake-up for the others.
        A push saves a session the task switch and its round of checks (docs/30_WS_PROTOCOL.md#cost)."""
        self._noticed.append((self.head, noticed))
        pushed = 0
        for waiter, push in self._waiters.items():
            written = push(frames, old_head, self.head)
            if written is None:
                waiter.set()
            elif written:
                pushed += 1  # a session whose filter matched nothing received nothing: no lag to tell
        if pushed and self._metrics is not None:
            self._metrics.observe_lag(asyncio.get_running_loop().time() - noticed, pushed)

    async def _fetch_forever(self) -> None:
        """The one task that uses the hub's connection: replaces it when lost, then reads."""
        backoff = Backoff("reading new events")
        loop = asyncio.get_running_loop()
        while True:
            # Awake, poll: writers do not notify. Asleep, wait for a NOTIFY (or the watchdog). Held back, poll too
            # (the holder may roll back, which sends no NOTIFY), at the awake pace while the hold is young (under load
            # some writer is nearly always in flight), and at a modest one behind a transaction that stays open.
            poll_s = self.wakefulness.poll_s()
            hold = self.hold
            if hold is not None and (poll_s is None or loop.time() - hold.since >= YOUNG_S):
                poll_s = HELD_POLL_S
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self._listener.lost:
                    await self._listener.reconnect()  # a lost connection wakes the fetcher: replaced at once
                await self._fetch()
            except Exception as exc:  # live delivery for everyone must outlive any one fault
                if isinstance(exc, DATABASE_ERRORS):
                    self._listener.lost = True  # the connection may be gone: replace it before reading again
                else:
                    _log.exception("reading new events hit a fault")
                await backoff.wait(exc)
                self._wake.set()
            else:
                backoff.reset()

    async def _fetch(self) -> None:
        """Read every row after ``head`` on the hub's own connection, one statement per page however many sessions
        there are; each page also tells the journal's epoch, so a reset costs no statement to notice."""
        self._fetched = True
        noticed = self._notified_at or asyncio.get_running_loop().time()
        self._notified_at = None  # a NOTIFY from now on is for the next read
        listener = self._listener.connection
        assert listener is not None  # connected by start(), replaced by reconnect() before any read
        found = 0  # events on the full pages before this one
        while True:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                page = await read_new(listener, limit=_FETCH_LIMIT, cursor=self.head)
            if page.epoch != self.epoch:
                _log.warning(
                    "the journal's epoch changed (the database was reset or restored); restarting at %d", page.head
                )
                self._reset(page.epoch, page.head)
                continue
            assert page.top is not None  # read_new always reports the top
            if page.top < self.head:  # the sequence only grows: it went back with a restore
                _log.error(
                    "the journal's newest id went back from %d to %d: it was restored without rotating the epoch; "
                    "restarting every session (clients with newer cursors are told to start again)",
                    self.head,
                    page.top,
                )
                self._reset(self.epoch, page.head)
                continue
            leaks = self._metrics.leaks if self._metrics is not None else None
            frames = list(page.frames(leaks))  # all or nothing; masks counted here, once per event
            old_head, self.head = self.head, max(self.head, page.cursor)  # the horizon may move back: never we
            self._rows.extend(frames)
            self._evict()
            if frames:
                self._deliver(frames, old_head, noticed)
            if len(frames) < _FETCH_LIMIT:
                async with asyncio.timeout(_READ_TIMEOUT_S):  # the hold's count, the flag, the check: as the read
                    self.hold = await follow_hold(self.hold, listener, page, log_after_s=self._held_log_s)
                    await self.wakefulness.after_read(
                        listener, rows=found + len(frames), delivered=self.head, held=self.hold is not None
                    )
                return
            found += len(frames)

    def _reset(self, epoch: str, head: int) -> None:
        self.epoch, self.floor, self.head = epoch, head, head
        self._rows, self._offset, self._noticed = [], 0, []
        self.hold = None
        self.generation += 1
        self._notify_waiters()

    def _evict(self) -> None:
        excess = len(self._rows) - self._offset - self._buffer_rows
        if excess > 0:
            self._offset += excess
            self.floor = self._rows[self._offset - 1].id
            stale = bisect_right(self._noticed, self.floor, key=_first)
            if stale > len(self._noticed) // 2:  # amortised, as the rows below
                del self._noticed[:stale]
            if self._offset > self._buffer_rows:  # amortised: copy only once the dead prefix outgrows the buffer
                del self._rows[: self._offset]
                self._offset = 0

    async def _watch_forever(self) -> None:
        """When a whole interval passed without a read, read anyway: that catches a lost notification, proves the
        connection still answers (a failed read replaces it) and checks the epoch; while events flow it costs
        nothing."""
        while True:
            await asyncio.sleep(self._check_interval_s)
            if not self._fetched:
                self._wake.set()
            self._fetched = False
