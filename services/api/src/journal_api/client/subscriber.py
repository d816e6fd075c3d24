"""A Python client for journal.v1 that reconnects and resumes by itself (docs/30_WS_PROTOCOL.md#python-client).

    async with subscribe(url, token=token, cursor_file="cursor.json") as events:
        async for event in events:
            ...

Its public names are those :mod:`journal_api.client` exports.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.uri import parse_uri

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
_JITTER = 0.1
# The request itself is wrong (or the token): retrying cannot help. 4409 is told apart by its error frame.
_REFUSED = {1002, 1003, 1007, 1008, 1009, 1010, 4400, 4401, 4403, 4408}
_RETRIED_STATUSES = {408, 429}  # a proxy's timeout or rate limit: worth another try, unlike the other 4xx
_log = logging.getLogger("journal_api.client")

OnCursor = Callable[[str, str | None], None]
"""Called with ``(cursor, epoch)`` whenever the position to resume from advances."""

OnRetry = Callable[[str, float], None]
"""Called with ``(problem, delay_s)`` before each wait for a reconnect."""

TokenProvider = Callable[[], str | Awaitable[str]]
"""Returns a fresh credential; called before every connection and when the server sends ``expiring``."""


class ClientError(Exception):
    """The subscription cannot go on; the message says why and what to do."""


class SubscriptionRefusedError(ClientError):
    """The server refused the request for good (bad request, token, timeout): ``code`` is the close code (or the
    HTTP status of a refused upgrade), ``error`` the error frame's code, if one came."""

    def __init__(self, code: int, error: str | None, message: str) -> None:
        super().__init__(f"the server refused the subscription ({code}): {message}")
        self.code = code
        self.error = error


class CursorRejectedError(ClientError):
    """The saved cursor does not belong to this journal (close 4409): drop it and start again."""


class EpochMismatchError(CursorRejectedError):
    """The journal was reset or restored since the cursor was saved (``epoch_mismatch``)."""


class CursorAheadError(CursorRejectedError):
    """The cursor is beyond the journal's newest event (``cursor_ahead``)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One journal event, as the server sent it (redacted); ``wire`` is the event object exactly as received."""

    id: int
    ts: datetime
    type: str
    channel: str
    level: str
    public_safe: bool
    symbol: str | None
    trade_id: str | None
    payload: dict[str, Any]
    wire: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Event:
        return cls(
            id=int(wire["id"]),
            ts=datetime.fromisoformat(wire["ts"]),
            type=wire["type"],
            channel=wire["channel"],
            level=wire["level"],
            public_safe=wire["public_safe"],
            symbol=wire["symbol"],
            trade_id=wire["trade_id"],
            payload=wire["payload"],
            wire=wire,
        )


@dataclass(frozen=True)
class CursorFile:
    """``{"cursor": "…", "epoch": "…"}`` in a file, rewritten atomically (a crash leaves the old or the new)."""

    path: Path

    def load(self) -> tuple[str | None, str | None]:
        """The saved cursor and epoch; ``(None, None)`` when there is no file yet."""
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None, None
        except orjson.JSONDecodeError:
            data = None
        except OSError as exc:
            raise ClientError(f"cannot read the cursor file {self.path} ({exc.strerror or exc})") from exc
        if not isinstance(data, dict):
            raise ClientError(f"{self.path} is not a cursor file; delete it or name another")
        return data.get("cursor"), data.get("epoch")

    def save(self, cursor: str, epoch: str | None) -> None:
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        try:
            temporary.write_bytes(orjson.dumps({"cursor": cursor, "epoch": epoch}))
            temporary.replace(self.path)
        except OSError as exc:
            raise ClientError(f"cannot save the cursor to {self.path} ({exc.strerror or exc})") from exc


class _Local(Exception):  # noqa: N818 - a wrapper, unwrapped before anyone sees it
    """An error raised on the caller's side while the connection was up (saving the cursor, the callback)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


class _Silent(Exception):  # noqa: N818 - a reason to reconnect, never seen outside
    """No frame arrived within the idle timeout."""


def _log_retry(problem: str, delay_s: float) -> None:
    _log.warning("%s; reconnecting in %.1f s", problem, delay_s)


class Subscriber:
    """An async iterator of :class:`Event` over as many connections as it takes; made by :data:`subscribe`
    (docs/30_WS_PROTOCOL.md#python-client).

    Public attributes: ``cursor`` and ``epoch`` (where a new subscription would resume), ``live`` (whether the
    current connection has replayed its backlog)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | TokenProvider,
        cursor: str | int | None = None,
        epoch: str | None = None,
        filter: Mapping[str, Any] | None = None,
        cursor_file: str | Path | None = None,
        on_cursor: OnCursor | None = None,
        on_retry: OnRetry | None = None,
        idle_timeout_s: float = 60.0,
    ) -> None:
        try:
            parse_uri(url)
        except InvalidURI:
            raise ValueError(
                f"{_without_password(url)!r} is not a WebSocket URL (ws://host:port/ws or wss://…)"
            ) from None
        self._url = url
        self._shown = _without_password(url)  # for messages and reprs
        self._token = token
        self._file = CursorFile(Path(cursor_file)) if cursor_file is not None else None
        if cursor is None and self._file is not None:
            cursor, epoch = self._file.load()
        self.cursor: str | None = None if cursor is None else str(cursor)
        self.epoch = epoch
        self.live = False
        self._filter = dict(filter or {})
        self._on_cursor = on_cursor
        self._on_retry = on_retry or _log_retry
        self._idle_timeout_s = idle_timeout_s
        self._progressed = False  # this connection delivered an event or `live` (backoff starts over)
        self._error: tuple[str, str] | None = None  # the last error frame's code and message
        self._events = self._run()

    def __repr__(self) -> str:  # never the token: a repr ends up in logs
        return f"Subscriber({self._shown!r}, cursor={self.cursor!r}, epoch={self.epoch!r})"

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Close the connection; the iteration ends."""
        await self._events.aclose()

    async def __aenter__(self) -> Subscriber:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self) -> AsyncGenerator[Event, None]:
        delay = BACKOFF_FIRST_S
        try:
            while True:
                self._progressed, self._error = False, None
                try:
                    async with self._connect(await self._credential()) as socket:
                        await socket.send(self._subscribe_message())
                        while True:
                            frame = await self._receive(socket)
                            if frame.get("op") == "expiring" and callable(self._token):
                                # refreshed in-band: the stream goes on, nothing to resume
                                await socket.send(
                                    orjson.dumps({"op": "auth", "token": await self._credential()}).decode()
                                )
                                continue
                            event = self._take(frame)
                            if event is not None:
                                yield event
                                self._advance(event.wire["id"])  # the loop's body is done with it
                except ConnectionClosed as closed:
                    problem = self._closed(closed)
                except InvalidStatus as refused:
                    status = refused.response.status_code
                    if status < 500 and status not in _RETRIED_STATUSES:
                        raise SubscriptionRefusedError(status, None, f"the upgrade got HTTP {status}") from None
                    problem = f"the upgrade got HTTP {status}"
                except _Silent:
                    problem = f"no frame for {self._idle_timeout_s:g} s"
                except (OSError, InvalidHandshake, TimeoutError) as exc:
                    problem = f"cannot connect: {exc or type(exc).__name__}"
                self.live = False
                if self._progressed:  # a connection that delivered something: the next failure is news, retry soon
                    delay = BACKOFF_FIRST_S
                wait = delay * (1 + random.uniform(0, _JITTER))  # noqa: S311 - spreading reconnects, not a secret
                self._on_retry(problem, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, BACKOFF_MAX_S)
        except _Local as local:  # the caller's side failed (cursor file, callback): not a reason to reconnect
            raise local.error from local.error.__cause__

    async def _credential(self) -> str:
        """The string token, or what the provider returns now (its exception ends the iteration, as it is)."""
        if not callable(self._token):
            return self._token
        try:
            token = self._token()
            return await token if inspect.isawaitable(token) else token
        except Exception as exc:
            raise _Local(exc) from exc

    def _connect(self, token: str) -> websockets.connect:
        headers = {"Authorization": f"Bearer {token}"}  # never in the URL: URLs end up in logs
        return websockets.connect(self._url, additional_headers=headers, open_timeout=10)

    def _subscribe_message(self) -> str:
        request: dict[str, Any] = {"op": "subscribe", "cursor": self.cursor}
        if self.epoch is not None:
            request["epoch"] = self.epoch
        if self._filter:
            request["filter"] = self._filter
        return orjson.dumps(request).decode()

    async def _receive(self, socket: ClientConnection) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._idle_timeout_s):
                message = await socket.recv()
        except TimeoutError:
            raise _Silent from None
        try:
            frame = orjson.loads(message)
        except orjson.JSONDecodeError:
            frame = None
        if not isinstance(frame, dict):
            raise ClientError(f"{self._shown} sent a frame that is not journal.v1 JSON: is it a journal server?")
        return frame

    def _take(self, frame: dict[str, Any]) -> Event | None:
        """Act on one frame; the event it carries, if any (its cursor is saved once the loop has handled it)."""
        try:
            op = frame["op"]
            if op == "event":
                event = Event.from_wire(frame["event"])
                self._progressed = True
                return event
            if op == "error":
                self._error = (frame["code"], frame["message"])
            elif op == "ready":
                self.epoch = frame["epoch"]
                self._advance(frame["cursor"])
            elif op == "live":
                self.live = self._progressed = True
                self._advance(frame["cursor"])
            elif op == "heartbeat":
                self._advance(frame["cursor"])
        except (KeyError, TypeError, ValueError):
            raise ClientError(
                f"{self._shown} sent a malformed {frame.get('op')!r} frame: is it a journal server?"
            ) from None
        return None  # pong, and ops of later protocol versions, carry nothing to act on

    def _advance(self, cursor: str) -> None:
        self.cursor = cursor
        try:
            if self._file is not None:
                self._file.save(cursor, self.epoch)
            if self._on_cursor is not None:
                self._on_cursor(cursor, self.epoch)
        except Exception as exc:  # an OSError here is the disk's or the callback's, not the connection's
            raise _Local(exc) from exc

    def _closed(self, closed: ConnectionClosed) -> str:
        """What to say before reconnecting; raises when reconnecting cannot help."""
        code = closed.rcvd.code if closed.rcvd is not None else 1006
        reason = closed.rcvd.reason if closed.rcvd is not None else "connection lost"
        error, message = self._error or (None, reason or "no reason given")
        if code == 4409:
            rejected = EpochMismatchError if error == "epoch_mismatch" else CursorAheadError
            raise rejected(f"the server rejected the cursor (4409 {error}): {message}")
        if code == 4401 and error == "token_expired" and callable(self._token):
            return f"closed {code} ({message}); a fresh credential comes from the token provider"
        if code in _REFUSED:
            raise SubscriptionRefusedError(code, error, message)
        return f"closed {code} ({message})"


subscribe = Subscriber
"""``subscribe(url, token=…, …)``: follow the journal at ``url``, every matching event once, in order, across
reconnects, until the server refuses for good (:class:`ClientError`) or the caller stops. The name reads as what it
does at the call site; it is the class itself, so the options are written once."""
