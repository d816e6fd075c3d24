"""uvicorn's sans-I/O WebSocket protocol, with the two changes the journal needs (docs/30_WS_PROTOCOL.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

__all__ = ["CLOSE_GRACE_S", "SEND_FRAMES", "JournalWebSocketProtocol", "SendFrames"]

SEND_FRAMES = "journal.send_frames"
"""The ASGI scope extension through which a session writes frames the hub encoded once:
``{"send": SendFrames, "write_now": WriteFrames, "buffered": () -> int}`` (the last: bytes written and not yet
taken by the client)."""

SendFrames = Callable[[bytes], Awaitable[None]]
"""Write whole encoded frames once the client has taken enough of what came before (backpressure)."""

WriteFrames = Callable[[bytes], bool]
"""Write whole encoded frames if that needs no wait, and say whether it did (``False``: nothing was written,
because the client must catch up first or is gone)."""

CLOSE_GRACE_S = 5.0
"""How long a finished connection may take to hand its last bytes (error and close frames) to the client."""


class JournalWebSocketProtocol(WebSocketsSansIOProtocol):
    """Frames are never logged, a stalled client is dropped, and encoded frames can be written as they are.

    - websockets logs whole frames, a subscribe's token included, when its logger is at DEBUG; uvicorn gives it
      ``uvicorn.error``, which operators do set to DEBUG. Frame logging is turned off here for good.
    - When the handler has finished, uvicorn closes the transport, which waits for the client to take what is
      still buffered: forever, if the client has stopped reading. Such a connection is aborted after
      :data:`CLOSE_GRACE_S`, so it holds no socket, no memory and no shutdown.
    - The ASGI scope carries :data:`SEND_FRAMES`: a server's frames are unmasked, so one encoding of an event serves
      every client, and a session writes many frames in one call. uvicorn's own send would frame each message
      again for every client.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn.debug = False
        self._lost = False

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.handshake_initiated and not self.close_sent:  # the app's task is scheduled, not started yet
            self.scope["extensions"][SEND_FRAMES] = {
                "send": self.send_frames,
                "write_now": self.write_frames_now,
                "buffered": self.transport.get_write_buffer_size,
            }

    async def send_frames(self, data: bytes) -> None:
        """Write whole encoded frames, once the client has taken enough of what came before (backpressure)."""
        await self.writable.wait()
        self._write(data)

    def write_frames_now(self, data: bytes) -> bool:
        """Write whole encoded frames if that needs no wait; ``False`` (nothing written) if the client must take
        what came before first, or is gone (:meth:`send_frames` then says which)."""
        if not self.writable.is_set() or not self._open():
            return False
        self.transport.write(data)
        return True

    def _open(self) -> bool:
        return not (self.disconnected or self.close_sent) and self.conn.state is State.OPEN

    def _write(self, data: bytes) -> None:
        if not self._open():
            raise ClientDisconnected
        self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        super().connection_lost(exc)

    async def run_asgi(self) -> None:
        await super().run_asgi()
        self.loop.call_later(CLOSE_GRACE_S, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self._lost:
            self.transport.abort()
