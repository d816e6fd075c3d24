"""A session's credential over time: the expiry warning and cut-off, the in-band refresh, revocation
(docs/30_WS_PROTOCOL.md, docs/60_ACCESS.md#expiry-on-a-live-stream).

The session asks only three things of its guard: frames to send (:meth:`Guard.take_frames`), whether it must close
(:attr:`Guard.fault`), and to check an ``auth`` message (:meth:`Guard.refresh`). Timers and revocations wake it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from journal_api.access.credentials import Authenticator, Credential
from journal_api.access.grants import GrantError, effective_filter
from journal_api.access.revocation import Revocations
from journal_api.journal.models import EventFilter
from journal_api.stream.protocol import ProtocolError, auth_ok_frame, expiring_frame
from journal_api.stream.settings import Settings

__all__ = ["Guard", "forbidden"]


def forbidden(error: GrantError) -> ProtocolError:
    """The protocol's error for a filter beyond the grant."""
    return ProtocolError("forbidden", f"{error}; ask for less, or use a credential that grants it")


class Guard:
    """Holds the session's credential. Public attribute: ``fault`` (the error to close with, once there is one)."""

    def __init__(
        self,
        credential: Credential,
        *,
        effective: EventFilter,
        authenticator: Authenticator,
        revocations: Revocations,
        settings: Settings,
    ) -> None:
        self.fault: ProtocolError | None = None
        self._credential = credential
        self._filter = effective
        self._authenticator = authenticator
        self._revocations = revocations
        self._expiring_s = settings.token_expiring_s
        self._grace_s = settings.token_grace_s
        self._outbox: list[str] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._wake: Callable[[], None] = _nothing

    def attach(self, wake: Callable[[], None]) -> None:
        """Start watching: ``wake`` is called whenever there is a frame to send or a fault."""
        self._wake = wake
        self._hold(self._credential)

    def detach(self) -> None:
        """Stop watching (the session is over)."""
        self._release(self._credential)
        self._wake = _nothing

    def take_frames(self) -> list[str]:
        """The frames to send now (``expiring``, ``auth_ok``), oldest first."""
        frames, self._outbox = self._outbox, []
        return frames

    def revoke(self) -> None:
        """The credential was revoked (the control channel, or a recheck)."""
        self._fail(ProtocolError("token_revoked", "the credential was revoked; get a new one and resubscribe"))

    async def refresh(self, token: str) -> None:
        """An ``auth`` message: take the new credential if it is valid, has the same subject and its grant covers
        the session's filter, and answer ``auth_ok``; set :attr:`fault` otherwise."""
        try:
            credential = await self._authenticator.authenticate(token)
            self._check_successor(credential)
        except ProtocolError as error:
            self._fail(error)
            return
        self._release(self._credential)
        self._credential = credential
        self._hold(credential)
        self._send(auth_ok_frame(credential.exp))

    def _check_successor(self, credential: Credential) -> None:
        """Raise :class:`ProtocolError` unless ``credential`` may replace the session's."""
        if credential.subject != self._credential.subject:
            raise ProtocolError("unauthorized", "the new token is for another subject; subscribe again with it instead")
        try:
            covered = effective_filter(self._filter, credential.grant) == self._filter
        except GrantError as exc:
            raise forbidden(exc) from None
        if not covered:
            raise ProtocolError(
                "forbidden", "the new credential does not grant this subscription's filter; subscribe again"
            )

    def _hold(self, credential: Credential) -> None:
        if credential.revocation is not None:
            self._revocations.add(credential.revocation, self)
        if credential.exp is not None:
            loop = asyncio.get_running_loop()
            left_s = credential.exp - time.time()
            self._timers = [
                loop.call_later(max(0.0, left_s - self._expiring_s), self._send, expiring_frame(credential.exp)),
                loop.call_later(max(0.0, left_s + self._grace_s), self._expired),
            ]

    def _release(self, credential: Credential) -> None:
        if credential.revocation is not None:
            self._revocations.discard(credential.revocation, self)
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def _expired(self) -> None:
        self._fail(
            ProtocolError(
                "token_expired",
                "the credential expired; subscribe again with a new one from your last cursor (nothing is lost)",
            )
        )

    def _send(self, frame: str) -> None:
        self._outbox.append(frame)
        self._wake()

    def _fail(self, error: ProtocolError) -> None:
        if self.fault is None:
            self.fault = error
        self._wake()


def _nothing() -> None:
    """The wake-up of a guard not attached to a running session."""
