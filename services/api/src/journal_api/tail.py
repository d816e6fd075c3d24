"""``journal tail``: print the stream, keep the cursor, reconnect and resume (docs/30_WS_PROTOCOL.md#journal-tail)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

__all__ = ["CursorFile", "Tail", "TailError", "pretty_line"]

_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 10.0
_FATAL_CODES = {4400, 4401, 4408, 4409}  # the request itself is wrong: retrying cannot help


class TailError(Exception):
    """The server refused the subscription for good; the message says why and what to do."""


@dataclass
class CursorFile:
    """``{"cursor": "…", "epoch": "…"}`` in a file, rewritten atomically (a crash leaves the old or the new)."""

    path: Path

    def load(self) -> tuple[str | None, str | None]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None, None
        except orjson.JSONDecodeError:
            raise TailError(f"{self.path} is not a cursor file; delete it or name another") from None
        if not isinstance(data, dict):
            raise TailError(f"{self.path} is not a cursor file; delete it or name another")
        return data.get("cursor"), data.get("epoch")

    def save(self, cursor: str, epoch: str | None) -> None:
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_bytes(orjson.dumps({"cursor": cursor, "epoch": epoch}))
        temporary.replace(self.path)


def pretty_line(event: dict[str, Any]) -> str:
    """One readable line for an event."""
    ts = str(event["ts"])[:19] + "Z"
    payload = orjson.dumps(event["payload"]).decode()
    return (
        f"{event['id']} {ts} {event['level']:<5} {event['type']} {event['symbol'] or '-'} "
        f"{event['trade_id'] or '-'} {payload}"
    )


@dataclass
class Tail:
    """A resuming subscriber that prints events. :meth:`run` returns only when the server refuses for good."""

    url: str
    token: str = field(repr=False)  # never in a repr, so never in a log
    cursor: str | None = None
    epoch: str | None = None
    filter: dict[str, Any] = field(default_factory=dict)
    pretty: bool = False
    cursor_file: CursorFile | None = None
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    # per connection: whether it got as far as `ready` (backoff starts over), and the last error frame's message
    _subscribed: bool = field(default=False, init=False, repr=False)
    _last_error: str = field(default="", init=False, repr=False)

    async def run(self) -> None:
        delay = _BACKOFF_FIRST_S
        while True:
            try:
                await self._session()
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                reason = closed.rcvd.reason if closed.rcvd is not None else "connection lost"
                if code in _FATAL_CODES:
                    raise TailError(
                        f"the server refused the subscription ({code}): {self._last_error or reason}"
                    ) from None
                problem = f"closed {code} ({reason or 'no reason given'})"
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                problem = f"cannot connect: {exc}"
            if self._subscribed:
                delay = _BACKOFF_FIRST_S
            print(f"journal tail: {problem}; reconnecting in {delay:g} s", file=self.err, flush=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX_S)

    async def _session(self) -> None:
        """One connection, until it closes (which always raises ConnectionClosed)."""
        self._subscribed = False
        self._last_error = ""
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            connecting = websockets.connect(self.url, additional_headers=headers, open_timeout=10)
        except InvalidURI:
            raise TailError(f"{self.url} is not a WebSocket URL (ws://host:port/ws)") from None
        async with connecting as socket:
            request: dict[str, Any] = {"op": "subscribe", "cursor": self.cursor}
            if self.epoch is not None:
                request["epoch"] = self.epoch
            if self.filter:
                request["filter"] = self.filter
            await socket.send(orjson.dumps(request).decode())
            while True:
                text = await socket.recv()
                try:
                    frame = orjson.loads(text)
                except orjson.JSONDecodeError:
                    raise TailError(f"{self.url} sent a frame that is not JSON: is it a journal server?") from None
                self._take(frame)

    def _take(self, frame: dict[str, Any]) -> None:
        op = frame["op"]
        if op == "error":
            self._last_error = frame["message"]
            return
        if op == "ready":
            self._subscribed = True
            self.epoch = frame["epoch"]
        elif op == "event":
            event = frame["event"]
            line = pretty_line(event) if self.pretty else orjson.dumps(event).decode()
            print(line, file=self.out, flush=True)
        self.cursor = frame.get("cursor", self.cursor)
        if self.cursor_file is not None and self.cursor is not None:
            self.cursor_file.save(self.cursor, self.epoch)
