"""Revocation on live streams: the sessions of this replica by what revokes their credential, closed when the
control channel says so (docs/60_ACCESS.md#revocation).

The hub hands every ``journal_control`` notification to :meth:`Revocations.on_control`, and ``None`` after each
(re)connect of its listener: notifications sent while it was not listening are lost, so the live credentials
are then checked against the database once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import asyncpg
import orjson

from journal_api.access.keys import revoked_among

__all__ = ["Revocable", "Revocations"]

_log = logging.getLogger("journal_api.access")

Reference = tuple[str, str]  # ("key", id) or ("jti", jti)


class Revocable(Protocol):
    """A holder of a credential that can be revoked: a session's guard."""

    def revoke(self) -> None: ...


class Revocations:
    """Which live sessions hold which revocable credential. Public methods: :meth:`add`, :meth:`discard`,
    :meth:`on_control`, :meth:`close`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._holders: dict[Reference, set[Revocable]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, reference: Reference, holder: Revocable) -> None:
        self._holders.setdefault(reference, set()).add(holder)

    def discard(self, reference: Reference, holder: Revocable) -> None:
        holders = self._holders[reference]  # added by the same holder before
        holders.discard(holder)
        if not holders:
            del self._holders[reference]

    def on_control(self, payload: str | None) -> None:
        """A notification on the control channel (revoke its holders now), or ``None``: the listener
        (re)connected, so check every live credential against the database. Never blocks (a listener callback)."""
        if payload is None:
            if self._holders:
                task = asyncio.get_running_loop().create_task(self._recheck(), name="journal-revocation-recheck")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return
        try:
            message = orjson.loads(payload)
            reference = (str(message["revoked"]), str(message["id"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            _log.warning("ignoring a control message that is not a revocation")
            return
        self._revoke(reference)

    async def close(self) -> None:
        """Stop any recheck in flight."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _revoke(self, reference: Reference) -> None:
        for holder in list(self._holders.get(reference, ())):
            holder.revoke()

    async def _recheck(self) -> None:
        keys = [identifier for kind, identifier in self._holders if kind == "key"]
        jtis = [identifier for kind, identifier in self._holders if kind == "jti"]
        try:
            revoked_keys, revoked_jtis = await revoked_among(self._pool, keys, jtis)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _log.warning("cannot recheck revocations after the listener reconnected (%s)", type(exc).__name__)
            return
        for identifier in revoked_keys:
            self._revoke(("key", identifier))
        for identifier in revoked_jtis:
            self._revoke(("jti", identifier))
