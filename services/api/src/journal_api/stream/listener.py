"""The hub's one connection to the journal: it LISTENs, and the hub's fetcher reads on it.

Connecting is one ordered recipe, run again whole on every reconnect: check that the horizon can be trusted, LISTEN
on ``events`` and on every other channel, register the hub's wakefulness row (awake, after LISTEN: from then on a
NOTIFY reaches it), count the connect, then tell each channel's listener to recheck what it may have missed while
the hub was deaf (docs/20_EVENT_JOURNAL.md#notify-and-waking-the-stream-only-when-it-sleeps).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from journal_api.journal.horizon import check_horizon
from journal_api.stream.wakefulness import Wakefulness

__all__ = ["CONNECT_TIMEOUT_S", "DATABASE_ERRORS", "LISTENER_NAME", "Backoff", "Listener"]

LISTENER_NAME = "journal-listener"
"""The listener's application_name, as pg_stat_activity shows it."""

DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What a lost or unreachable database raises."""

CONNECT_TIMEOUT_S = 30.0
"""A reconnect (connect, check, LISTEN, register) that takes longer is given up and tried again after the backoff:
a statement that never returns (a connection that no longer answers, a lock) must not stall the hub for good."""
_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 5.0
_log = logging.getLogger("journal_api.hub")  # the hub's lines, whichever module writes them


class Backoff:
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


class Listener:
    """The LISTEN connection of one hub.

    ``connection`` is ``None`` until :meth:`connect` succeeds and after :meth:`drop`; ``lost`` says the connection
    may be gone (set when Postgres ends it, or by the hub when a read fails) and must be replaced before the next
    read; ``connects`` counts the connects that completed. ``on_notify()`` runs for each NOTIFY on ``events`` and
    ``on_lost()`` when the connection ends; neither may block.
    """

    def __init__(
        self,
        dsn: str,
        wakefulness: Wakefulness,
        *,
        on_notify: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.connection: asyncpg.Connection | None = None
        self.lost = False
        self.connects = 0
        self._dsn = dsn
        self._wakefulness = wakefulness
        self._on_notify = on_notify
        self._on_lost_callback = on_lost
        self._channels: dict[str, Callable[[str | None], None]] = {}

    @property
    def up(self) -> bool:
        """Whether there is a connection and it is not known to be lost."""
        return self.connection is not None and not self.lost

    def listen(self, channel: str, callback: Callable[[str | None], None]) -> None:
        """Also LISTEN on ``channel`` from the next connect on: ``callback(payload)`` for each notification, and
        ``callback(None)`` after every connect."""
        self._channels[channel] = callback

    async def connect(self) -> None:
        """Connect and subscribe, in the module's order; a half-made connection from a failed attempt is closed."""
        await self.drop()
        connection = await asyncpg.connect(
            self._dsn,
            server_settings={"application_name": LISTENER_NAME, "default_transaction_isolation": "read committed"},
        )
        connection.add_termination_listener(self._on_lost)
        self.connection = connection  # owned from here on: drop() closes it whatever happens next
        self.lost = False
        await check_horizon(connection)  # on every connect: the database may have been changed meanwhile
        await connection.add_listener("events", self._on_events)
        for channel, callback in self._channels.items():
            await connection.add_listener(channel, lambda *args, callback=callback: callback(args[3]))
        await self._wakefulness.start(connection)  # after LISTEN: from here on a NOTIFY reaches this hub
        self.connects += 1  # counted before anyone hears of it: a recheck may act at the next await
        for callback in self._channels.values():
            callback(None)  # what was notified while the hub was deaf is lost: each channel's listener rechecks

    async def reconnect(self) -> None:
        """Replace a lost connection, retrying with backoff until the database answers again."""
        _log.warning("lost the LISTEN connection; reconnecting")
        await self.drop()
        backoff = Backoff("reconnecting the listener")
        while True:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await self.connect()
            except DATABASE_ERRORS as exc:
                await backoff.wait(exc)
            else:
                break
        _log.info("listener reconnected; re-reading the journal")  # the read that follows also notices a reset

    async def drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.remove_termination_listener(self._on_lost)
            with contextlib.suppress(*DATABASE_ERRORS):
                await connection.close(timeout=1)

    def _on_events(self, *_: object) -> None:
        self._on_notify()

    def _on_lost(self, *_: object) -> None:
        self.lost = True
        self._on_lost_callback()
