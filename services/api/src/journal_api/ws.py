"""The ``/ws`` endpoint: origin check, subscribe, and the close code for every way a session ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg
from starlette.websockets import WebSocket, WebSocketDisconnect

from journal_api.hub import DATABASE_ERRORS, Hub
from journal_api.protocol import ProtocolError, bearer_token, error_frame, parse_subscribe
from journal_api.repository import journal_state
from journal_api.session import Restart, Session
from journal_api.settings import Settings
from journal_api.transport import CLOSE_GRACE_S

__all__ = ["Journal", "websocket_endpoint"]

_log = logging.getLogger("journal_api.ws")


@dataclass
class Journal:
    """What the endpoint needs, owned by the app's lifespan."""

    settings: Settings
    pool: asyncpg.Pool
    hub: Hub
    sessions: int = 0


async def websocket_endpoint(websocket: WebSocket) -> None:
    """Serve one WebSocket; whatever happens, it ends with the close code the protocol gives."""
    journal: Journal = websocket.app.state.journal
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in journal.settings.allowed_origins:
        await websocket.close(code=1008)  # before accept: the server answers HTTP 403
        return
    await websocket.accept()
    if journal.sessions >= journal.settings.max_connections:
        await _close(websocket, ProtocolError("overloaded", "too many connections; reconnect with backoff"))
        return
    journal.sessions += 1
    try:
        await _serve(websocket, journal)
    except ProtocolError as error:
        await _close(websocket, error)
    except Restart:
        await _close(websocket, None, code=1012)
    except WebSocketDisconnect:
        pass  # the client went away (Starlette reports a dead socket this way too): nothing to tell it
    except DATABASE_ERRORS as exc:
        _log.warning("session ended: the database is unavailable (%s)", type(exc).__name__)
        await _close(websocket, ProtocolError("internal_error", "the journal is unavailable; reconnect and resume"))
    except Exception:
        _log.exception("session failed")
        await _close(websocket, ProtocolError("internal_error", "internal error; reconnect and resume"))
    finally:
        journal.sessions -= 1


async def _serve(websocket: WebSocket, journal: Journal) -> None:
    settings = journal.settings
    try:
        async with asyncio.timeout(settings.auth_timeout_s):
            message = await websocket.receive()
    except TimeoutError:
        raise ProtocolError(
            "auth_timeout", f"no subscribe within {settings.auth_timeout_s:g} s; send it at once after connecting"
        ) from None
    if message["type"] == "websocket.disconnect":
        return
    subscription = parse_subscribe(
        message.get("text"), header_token=bearer_token(websocket.headers.get("authorization")), tokens=settings.tokens
    )
    epoch, head = await journal_state(journal.pool)
    if epoch != journal.hub.epoch:  # the journal was reset and the hub has not seen it yet: come back shortly
        journal.hub.read_now()
        raise Restart
    if subscription.epoch is not None and subscription.epoch != epoch:
        raise ProtocolError(
            "epoch_mismatch",
            f"this journal's epoch is {epoch}, not the one your cursor came from; "
            "drop the cursor and subscribe again without one",
        )
    if subscription.cursor is not None and subscription.cursor > head:
        raise ProtocolError(
            "cursor_ahead",
            f"cursor {subscription.cursor} is beyond the newest event ({head}); "
            "this is not the journal your cursor came from: drop it and subscribe again",
        )
    session = Session(
        websocket,
        hub=journal.hub,
        pool=journal.pool,
        settings=settings,
        subscription=subscription,
        epoch=epoch,
        head=head,
    )
    await session.run()


async def _close(websocket: WebSocket, error: ProtocolError | None, *, code: int | None = None) -> None:
    """Send the error frame (if any) and the close frame; give up quietly if the client is gone or stalled."""
    _log.info("closing session: %s", error.code if error is not None else f"close code {code}")
    with contextlib.suppress(TimeoutError, WebSocketDisconnect, OSError, RuntimeError):
        async with asyncio.timeout(CLOSE_GRACE_S):
            if error is not None:
                await websocket.send_text(error_frame(error))
            await websocket.close(code=error.close_code if error is not None else (code or 1000))
