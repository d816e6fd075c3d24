"""The hub: one LISTEN connection, one fetcher, and a buffer of recent rows shared by every live session.

NOTIFY is a wake-up, the table is the truth: the fetcher always reads the rows after its own position, so a lost
notification costs latency, never an event (docs/30_WS_PROTOCOL.md#how-the-server-keeps-the-promise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from bisect import bisect_right
from dataclasses import dataclass

import asyncpg

from journal_api.models import Event
from journal_api.protocol import event_frame
from journal_api.repository import journal_state, query_events

__all__ = ["DATABASE_ERRORS", "LISTENER_NAME", "Hub", "Row"]

LISTENER_NAME = "journal-listener"
"""The listener's application_name, as pg_stat_activity shows it."""

DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What a lost or unreachable database raises."""

_FETCH_LIMIT = 1000
_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 5.0
_log = logging.getLogger("journal_api.hub")


@dataclass(frozen=True, slots=True)
class Row:
    """A fetched event and its frame, serialised once for every client."""

    event: Event
    frame: str


def _row_id(row: Row) -> int:
    return row.event.id


class _Backoff:
    """Exponential backoff from 0.1 s to 5 s that logs each failure it waits after."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._delay = _BACKOFF_FIRST_S

    async def wait(self, error: BaseException) -> None:
        _log.warning("%s failed (%s); retrying in %.1f s", self._what, type(error).__name__, self._delay)
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, _BACKOFF_MAX_S)

    def reset(self) -> None:
        self._delay = _BACKOFF_FIRST_S


class Hub:
    """Fans new events out to sessions.

    Public attributes: ``epoch`` (the journal's), ``floor`` and ``head`` (every event with ``floor < id <= head``
    is in the buffer), ``generation`` (bumped whenever the journal was found reset: sessions of an older
    generation must restart), ``closed``, ``listener_connects``.
    """

    def __init__(self, dsn: str, pool: asyncpg.Pool, *, buffer_rows: int, check_interval_s: float) -> None:
        self.epoch = ""
        self.floor = 0
        self.head = 0
        self.generation = 0
        self.closed = False
        self.listener_connects = 0
        self._dsn = dsn
        self._pool = pool
        self._buffer_rows = buffer_rows
        self._check_interval_s = check_interval_s
        self._rows: list[Row] = []
        self._offset = 0  # rows before this index were evicted; compacted now and then
        self._waiters: set[asyncio.Event] = set()
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._fetched = False
        self._reset_pending = False
        self._listener: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # public methods

    async def start(self) -> None:
        """Connect the listener and take the journal's head as the starting position. Fails if the database
        cannot be reached, so the server does not start half-blind."""
        try:
            await self._connect()
            self.epoch, self.head = await journal_state(self._pool)
        except BaseException:
            await self._drop_listener()
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
        await self._drop_listener()

    def waiter(self) -> asyncio.Event:
        """An event the hub sets whenever the buffer or the hub's state changes; :meth:`forget` it when done."""
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        return waiter

    def forget(self, waiter: asyncio.Event) -> None:
        self._waiters.discard(waiter)

    def notice_epoch(self, epoch: str) -> None:
        """A session read an epoch the hub does not have yet: re-read the journal from its new head now."""
        if epoch != self.epoch:
            self._reset_pending = True
            self._wake.set()

    def rows_after(self, cursor: int) -> tuple[list[Row], int] | None:
        """The buffered rows after ``cursor`` and the head they reach, or ``None`` when ``cursor`` is older than
        the buffer (the caller must read the database)."""
        if cursor < self.floor:
            return None
        index = bisect_right(self._rows, cursor, lo=self._offset, key=_row_id)
        return self._rows[index:], self.head

    # private methods

    async def _connect(self) -> None:
        await self._drop_listener()  # a half-made listener from a failed attempt is closed, never leaked
        listener = await asyncpg.connect(self._dsn, server_settings={"application_name": LISTENER_NAME})
        listener.add_termination_listener(self._on_lost)
        self._listener = listener  # owned from here on: _drop_listener closes it whatever happens next
        self._lost.clear()
        await listener.add_listener("events", self._on_notify)
        self.listener_connects += 1

    async def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.remove_termination_listener(self._on_lost)
            with contextlib.suppress(*DATABASE_ERRORS):
                await listener.close(timeout=1)

    def _on_notify(self, *_: object) -> None:
        # Never trusted as data (the table is): only a wake-up. Callbacks must not block.
        self._wake.set()

    def _on_lost(self, *_: object) -> None:
        self._lost.set()

    def _notify_waiters(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    async def _fetch_forever(self) -> None:
        backoff = _Backoff("reading new events")
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._fetch()
            except Exception as exc:  # live delivery for everyone must outlive any one fault
                if not isinstance(exc, DATABASE_ERRORS):
                    _log.exception("reading new events hit a fault")
                await backoff.wait(exc)
                self._wake.set()
            else:
                backoff.reset()

    async def _fetch(self) -> None:
        """Read every row after ``head``, one statement per page however many sessions there are."""
        self._fetched = True
        if self._reset_pending:
            epoch, head = await journal_state(self._pool)
            _log.warning("the journal's epoch changed (the database was reset or restored); restarting at %d", head)
            self._reset(epoch, head)
        while True:
            page = await query_events(self._pool, limit=_FETCH_LIMIT, cursor=self.head)
            if page.head < self.head:
                _log.error(
                    "the journal's head went back from %d to %d: it was restored without rotating the epoch; "
                    "restarting every session (clients with newer cursors are told to start again)",
                    self.head,
                    page.head,
                )
                self._reset(self.epoch, page.head)
                continue
            rows = [Row(event, event_frame(event)) for event in page.events]  # all or nothing
            self._rows.extend(rows)
            self.head = page.cursor
            self._evict()
            if page.events:
                self._notify_waiters()
            if len(page.events) < _FETCH_LIMIT:
                return

    def _reset(self, epoch: str, head: int) -> None:
        self.epoch, self.floor, self.head = epoch, head, head
        self._rows, self._offset, self._reset_pending = [], 0, False
        self.generation += 1
        self._notify_waiters()

    def _evict(self) -> None:
        excess = len(self._rows) - self._offset - self._buffer_rows
        if excess > 0:
            self._offset += excess
            self.floor = self._rows[self._offset - 1].event.id
            if self._offset > self._buffer_rows:  # amortised: copy only once the dead prefix outgrows the buffer
                del self._rows[: self._offset]
                self._offset = 0

    async def _watch_forever(self) -> None:
        """Notice a dead listener (termination callback or a failed probe), reconnect, and re-read."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._check_interval_s)
            try:
                if self._lost.is_set() or not await self._probe():
                    await self._reconnect()
                elif not self._fetched:
                    self._wake.set()  # nothing read for a whole interval: re-read in case a notification was lost
            except Exception:  # the watchdog must outlive any one fault
                _log.exception("checking the listener hit a fault")
            self._fetched = False

    async def _probe(self) -> bool:
        """Whether the listener still works; also notices a changed epoch (every interval, busy or not: a
        rotated epoch must be noticed while events keep coming)."""
        assert self._listener is not None
        try:
            epoch = await self._listener.fetchval(
                "SELECT epoch::text FROM journal_meta", timeout=self._check_interval_s
            )
        except DATABASE_ERRORS:
            return False
        self.notice_epoch(epoch)
        return True

    async def _reconnect(self) -> None:
        _log.warning("lost the LISTEN connection; reconnecting")
        await self._drop_listener()
        backoff = _Backoff("reconnecting the listener")
        while True:
            try:
                await self._connect()
            except DATABASE_ERRORS as exc:
                await backoff.wait(exc)
            else:
                break
        _log.info("listener reconnected; re-reading the journal")
        await self._probe()  # notices a journal that was reset meanwhile
        self._wake.set()  # events committed while the hub was deaf are read now
