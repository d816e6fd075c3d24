"""uvicorn's sans-I/O WebSocket protocol, with the two changes the journal needs (docs/30_WS_PROTOCOL.md)."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = ["CLOSE_GRACE_S", "JournalWebSocketProtocol"]

CLOSE_GRACE_S = 5.0
"""How long a finished connection may take to hand its last bytes (error and close frames) to the client."""


class JournalWebSocketProtocol(WebSocketsSansIOProtocol):
    """Frames are never logged, and a stalled client is dropped.

    - websockets logs whole frames, a subscribe's token included, when its logger is at DEBUG; uvicorn gives it
      ``uvicorn.error``, which operators do set to DEBUG. Frame logging is turned off here for good.
    - When the handler has finished, uvicorn closes the transport, which waits for the client to take what is
      still buffered: forever, if the client has stopped reading. Such a connection is aborted after
      :data:`CLOSE_GRACE_S`, so it holds no socket, no memory and no shutdown.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn.debug = False
        self._lost = False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        super().connection_lost(exc)

    async def run_asgi(self) -> None:
        await super().run_asgi()
        self.loop.call_later(CLOSE_GRACE_S, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self._lost:
            self.transport.abort()
