"""One subscribed client: replay from its cursor, hand off to the hub's buffer, tail (docs/30_WS_PROTOCOL.md).

Every position a session holds means "every matching event up to here was sent", whether it came from a
database page or from the hub's buffer; that is why the handoff between the two can neither skip nor repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import asyncpg
from starlette.websockets import WebSocket, WebSocketDisconnect

from journal_api.journal.frames import Frame, text_frame
from journal_api.journal.models import EventFilter
from journal_api.journal.repository import read_frames
from journal_api.stream.hub import Hub
from journal_api.stream.metrics import Metrics
from journal_api.stream.protocol import (
    PONG,
    ProtocolError,
    Subscription,
    heartbeat_frame,
    is_ping,
    live_frame,
    ready_frame,
)
from journal_api.stream.settings import Settings
from journal_api.stream.transport import SEND_FRAMES, SendFrames, WriteFrames

__all__ = ["Restart", "Session"]

_WRITE_BYTES = 16_384  # frames are written in runs of about this size: a long replay takes turns every ~0.3 ms
_PONG = text_frame(PONG.encode())


class Restart(Exception):  # noqa: N818 - an instruction to the client, not a fault
    """The server is closing or the journal was reset: close 1012 so the client reconnects and resumes."""


class Session:
    """A subscribed WebSocket. Public method: :meth:`run`, which returns when the client goes away."""

    def __init__(
        self,
        websocket: WebSocket,
        *,
        hub: Hub,
        pool: asyncpg.Pool,
        settings: Settings,
        metrics: Metrics,
        subscription: Subscription,
        epoch: str,
        head: int,
    ) -> None:
        self._websocket = websocket
        self._hub = hub
        self._pool = pool
        self._settings = settings
        self._filter = subscription.filter
        self._everything = subscription.filter == EventFilter()
        extension = websocket.scope["extensions"][SEND_FRAMES]
        self._send_frames: SendFrames = extension["send"]
        self._write_now: WriteFrames = extension["write_now"]
        self.queued_bytes: Callable[[], int] = extension["buffered"]
        self._metrics = metrics
        self._epoch = epoch
        self._generation = hub.generation
        self._position = head if subscription.cursor is None else subscription.cursor
        self._head = max(head, self._position)  # a cursor may be past this read's horizon: it was final already
        self.start = self._position
        self.frames_sent = 0
        self.left_with = 1000  # the close code the client left with
        self._pongs = 0
        self._gone = False
        self._fault: ProtocolError | None = None
        self._idle = False  # waiting for the hub, everything up to the position sent
        self._waiter = hub.waiter(self._push)

    @property
    def position(self) -> int:
        """Every matching event up to here has been written to the client."""
        return self._position

    async def run(self) -> None:
        """Serve the client until it leaves; raise :class:`ProtocolError` or :class:`Restart` to close it."""
        reader = asyncio.create_task(self._read(), name="journal-session-read")
        self._metrics.sessions.add(self)
        try:
            await self._write()
        finally:
            self._metrics.sessions.discard(self)
            self._hub.forget(self._waiter)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read(self) -> None:
        """Take the client's messages: pings are answered by the writer; anything else is a fault."""
        while True:
            message = await self._websocket.receive()
            if message["type"] == "websocket.disconnect":
                self._gone = True
                self.left_with = message.get("code", 1000)
            elif is_ping(message.get("text")):
                self._pongs += 1
            else:
                self._fault = ProtocolError("bad_request", 'after subscribing, send only {"op":"ping"}')
            self._waiter.set()
            if self._gone or self._fault:
                return

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        await self._send(ready_frame(self._epoch, self._position, self._head))
        live = False
        heartbeat_s = self._settings.heartbeat_s
        heartbeat_due = loop.time() + heartbeat_s
        # One timer per heartbeat, not one per wait: a busy session waits many times per heartbeat.
        timer = loop.call_at(heartbeat_due, self._waiter.set)
        try:
            while True:
                self._waiter.clear()  # before looking at the state, so a change made meanwhile wakes the wait
                if self._gone:
                    return
                if self._fault is not None:
                    raise self._fault
                if self._pongs:
                    pongs, self._pongs = self._pongs, 0  # pings that come while these are sent are counted anew
                    await self._send_all([_PONG] * pongs)
                behind = await self._catch_up()
                if not behind and not live:
                    await self._send(live_frame(self._position))
                    live = True
                if loop.time() >= heartbeat_due:
                    head = max(self._hub.head, self._position)
                    await self._send(heartbeat_frame(self._position, head, datetime.now(UTC)))
                    heartbeat_due = loop.time() + heartbeat_s
                    timer = loop.call_at(heartbeat_due, self._waiter.set)
                if not behind:
                    self._idle = True
                    try:
                        await self._waiter.wait()
                    finally:
                        self._idle = False
        finally:
            timer.cancel()

    async def _catch_up(self) -> bool:
        """Send what the buffer holds after the position, or one page from the database when the position is
        older than the buffer. Return whether more backlog is waiting in the database."""
        self._check_hub()  # no await between this check and the read below
        buffered = self._hub.rows_after(self._position)
        # The buffer serves only a position inside it, and only once it has reached the head announced in
        # `ready`: until the hub has read that far, the backlog comes from the database, so `live` never comes
        # before events the client was told exist.
        if buffered is None or buffered[1] < self._head:
            page_size = self._settings.page_size
            # Up to a horizon read before: the hub's (once per wake-up for everyone), or the one this session's
            # subscribe read, whichever is newer; never one per page.
            horizon = max(self._hub.head, self._head)
            page = await read_frames(
                self._pool, limit=page_size, cursor=self._position, filters=self._filter, horizon=horizon
            )
            self._check_hub()  # a reset during the read: this page may belong to another journal
            await self._send_all(frame.wire for frame in page.frames())  # built as sent, run by run
            self._metrics.replayed_rows += len(page.rows)
            self._position = page.cursor
            return len(page.rows) == page_size
        frames, head = buffered  # taken together, so frames appended while sending wait for the next round
        frames = self._matching(frames)
        if frames:
            noticed = self._hub.noticed_at(frames[0].id)  # before the await: the hub may reset meanwhile
            await self._send_all(frame.wire for frame in frames)
            self._metrics.observe_lag(asyncio.get_running_loop().time() - noticed)
        self._position = max(self._position, head)
        return False

    def _push(self, frames: list[Frame], old_head: int, new_head: int) -> int | None:
        """The hub's new frames, written here and now when this session is waiting, has sent everything up to
        ``old_head``, and its client takes them without a wait: how many matched and were written. ``None``
        otherwise, and the hub wakes it."""
        if not self._idle or self._waiter.is_set() or self._position != old_head:
            return None
        wires = [frame.wire for frame in self._matching(frames)]
        data = b"".join(wires)
        if len(data) > _WRITE_BYTES or (data and not self._write_now(data)):
            return None  # a long run is written in turns by the session; a blocked one waits there
        self._sent(len(wires))
        self._position = new_head
        return len(wires)

    def _matching(self, frames: list[Frame]) -> list[Frame]:
        """The frames this client's filter lets through."""
        if self._everything:
            return frames
        matches = self._filter.matches
        return [frame for frame in frames if matches(frame)]

    def _check_hub(self) -> None:
        if self._hub.closed or self._hub.generation != self._generation:
            raise Restart

    async def _send(self, frame: str) -> None:
        await self._send_all((text_frame(frame.encode()),))

    async def _send_all(self, frames: Iterable[bytes]) -> None:
        """Write encoded frames in order, a run of about :data:`_WRITE_BYTES` at a time, each within the send
        timeout (a client that takes none of them in that time is a slow consumer), letting other sessions run
        between runs."""
        run: list[bytes] = []
        size = 0
        for frame in frames:
            run.append(frame)
            size += len(frame)
            if size >= _WRITE_BYTES:
                await self._write_run(run)
                run, size = [], 0
                await asyncio.sleep(0)  # a long replay takes turns with live sessions, run by run
        if run:
            await self._write_run(run)

    async def _write_run(self, run: list[bytes]) -> None:
        data = b"".join(run)
        try:
            if not self._write_now(data):  # the common case writes at once: no wait, so no timer
                async with asyncio.timeout(self._settings.send_timeout_s):
                    await self._send_frames(data)
        except TimeoutError:
            raise ProtocolError(
                "slow_consumer",
                f"the client took no frame for {self._settings.send_timeout_s:g} s; "
                "reconnect and resume from your last cursor",
            ) from None
        except OSError:  # the client is gone: reported the way Starlette reports it
            raise WebSocketDisconnect(1006) from None
        self._sent(len(run))

    def _sent(self, frames: int) -> None:
        self.frames_sent += frames  # this session's, for its closing log line
        self._metrics.frames_sent += frames  # every session's, for /metrics
