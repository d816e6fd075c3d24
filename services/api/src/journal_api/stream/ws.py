"""The ``/ws`` endpoint: origin check, subscribe, and the close code for every way a session ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import asyncpg
from starlette.websockets import WebSocket, WebSocketDisconnect

from journal_api.access.credentials import Authenticator
from journal_api.access.grants import GrantError, effective_filter
from journal_api.access.revocation import Revocations
from journal_api.journal.repository import journal_state
from journal_api.stream.guard import Guard, forbidden
from journal_api.stream.hub import Hub
from journal_api.stream.listener import DATABASE_ERRORS
from journal_api.stream.logs import FIELDS
from journal_api.stream.metrics import Metrics
from journal_api.stream.protocol import (
    CLOSE_CODES,
    ProtocolError,
    bearer_token,
    error_frame,
    parse_subscribe,
    subscribe_token,
)
from journal_api.stream.session import Restart, Session
from journal_api.stream.settings import Settings
from journal_api.stream.transport import CLOSE_GRACE_S

__all__ = ["Journal", "websocket_endpoint"]

_log = logging.getLogger("journal_api.ws")
# The codes the protocol uses: the errors' and those a session ends with otherwise (docs/30_WS_PROTOCOL.md).
_COUNTED_CODES = {1000, 1001, 1005, 1006, 1008, 1009, 1012, *CLOSE_CODES.values()}


@dataclass
class Journal:
    """What the endpoint needs, owned by the app's lifespan."""

    settings: Settings
    pool: asyncpg.Pool
    hub: Hub
    metrics: Metrics
    authenticator: Authenticator
    revocations: Revocations


@dataclass
class _Connection:
    """One /ws connection, for its log lines (docs/50_OPERATIONS.md#logs)."""

    id: str
    peer: str
    opened: float
    session: Session | None = None

    def log(self, message: str, level: int = logging.INFO, **fields: object) -> None:
        _log.log(level, message, extra={FIELDS: {"session": self.id, "peer": self.peer, **fields}})


async def websocket_endpoint(websocket: WebSocket) -> None:
    """Serve one WebSocket; whatever happens, it ends with the close code the protocol gives, counted and
    logged once."""
    journal: Journal = websocket.app.state.journal
    if not _origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host"), journal.settings):
        await websocket.close(code=1008)  # before accept: the server answers HTTP 403
        return
    await websocket.accept()
    client = websocket.client
    peer = f"{client.host}:{client.port}" if client is not None else "unknown"
    connection = _Connection(id=secrets.token_hex(6), peer=peer, opened=time.monotonic())
    metrics = journal.metrics
    if metrics.connections >= journal.settings.max_connections:
        await _end(
            websocket, connection, metrics, ProtocolError("overloaded", "too many connections; reconnect with backoff")
        )
        return
    metrics.connections += 1
    try:
        left_with = await _serve(websocket, journal, connection)
    except ProtocolError as error:
        await _end(websocket, connection, metrics, error)
    except Restart:
        await _end(websocket, connection, metrics, None, code=1012, reason="server_restart")
    except WebSocketDisconnect as gone:  # the client went away (Starlette reports a dead socket this way too)
        _ended(connection, metrics, "client_left", gone.code)
    except DATABASE_ERRORS as exc:
        unavailable = ProtocolError("internal_error", "the journal is unavailable; reconnect and resume")
        await _end(websocket, connection, metrics, unavailable, cause=type(exc).__name__)
    except Exception:
        _log.exception("session failed", extra={FIELDS: {"session": connection.id}})
        await _end(
            websocket, connection, metrics, ProtocolError("internal_error", "internal error; reconnect and resume")
        )
    else:
        _ended(connection, metrics, "client_left", left_with)
    finally:
        metrics.connections -= 1


def _origin_allowed(origin: str | None, host: str | None, settings: Settings) -> bool:
    """No ``Origin`` (a program), the server's own origin (its ``/console``), or one the operator listed."""
    if origin is None or origin in settings.allowed_origins:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and host is not None and parts.netloc.lower() == host.lower()


async def _serve(websocket: WebSocket, journal: Journal, connection: _Connection) -> int:
    """Subscribe and serve the client until it leaves; return the close code it left with."""
    settings = journal.settings
    try:
        async with asyncio.timeout(settings.auth_timeout_s):
            message = await websocket.receive()
    except TimeoutError:
        raise ProtocolError(
            "auth_timeout", f"no subscribe within {settings.auth_timeout_s:g} s; send it at once after connecting"
        ) from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    token, request = subscribe_token(
        message.get("text"), header_token=bearer_token(websocket.headers.get("authorization"))
    )
    credential = await journal.authenticator.authenticate(token)
    subscription = parse_subscribe(request)
    try:
        subscription = replace(subscription, filter=effective_filter(subscription.filter, credential.grant))
    except GrantError as exc:
        raise forbidden(exc) from None
    epoch, horizon, top = await journal_state(journal.pool)
    if epoch != journal.hub.epoch:  # the journal was reset and the hub has not seen it yet: come back shortly
        journal.hub.read_now()
        raise Restart
    if subscription.epoch is not None and subscription.epoch != epoch:
        raise ProtocolError(
            "epoch_mismatch",
            f"this journal's epoch is {epoch}, not the one your cursor came from; "
            "drop the cursor and subscribe again without one",
        )
    if subscription.cursor is not None and subscription.cursor > top:
        raise ProtocolError(
            "cursor_ahead",
            f"cursor {subscription.cursor} is beyond the newest event ({top}); "
            "this is not the journal your cursor came from: drop it and subscribe again",
        )
    # The head a session is told, and replays up to: the delivery horizon, as read now or by the hub if that is
    # newer (the horizon may move back between reads; every one of them stays true).
    head = max(horizon, journal.hub.head)
    session = Session(
        websocket,
        hub=journal.hub,
        pool=journal.pool,
        settings=settings,
        metrics=journal.metrics,
        subscription=subscription,
        guard=Guard(
            credential,
            effective=subscription.filter,
            authenticator=journal.authenticator,
            revocations=journal.revocations,
            settings=settings,
        ),
        epoch=epoch,
        head=head,
    )
    connection.session = session
    connection.log(
        "session opened",
        cursor=str(session.start),
        head=str(head),
        epoch=epoch,
        filter=subscription.filter.model_dump(exclude_defaults=True),
        subject=credential.subject,
    )
    await session.run()
    return session.left_with


async def _end(
    websocket: WebSocket,
    connection: _Connection,
    metrics: Metrics,
    error: ProtocolError | None,
    *,
    code: int = 1000,
    reason: str = "",
    cause: str | None = None,
) -> None:
    """Count and log the end, then send the error frame (if any) and the close frame, giving up quietly if the
    client is gone or stalled (which may take :data:`CLOSE_GRACE_S`: the line is not held back that long)."""
    if error is not None:
        code, reason = error.close_code, error.code
    _ended(connection, metrics, reason, code, cause)
    with contextlib.suppress(TimeoutError, WebSocketDisconnect, OSError, RuntimeError):
        async with asyncio.timeout(CLOSE_GRACE_S):
            if error is not None:
                await websocket.send_text(error_frame(error))
            await websocket.close(code=code)


def _ended(connection: _Connection, metrics: Metrics, reason: str, code: int, cause: str | None = None) -> None:
    # A client chooses the code it leaves with: codes outside the protocol's are counted together, so a client
    # cannot make the metric grow a series per code.
    metrics.closes[code if code in _COUNTED_CODES else "other"] += 1
    fields: dict[str, object] = {"reason": reason, "code": code}
    if cause is not None:
        fields["cause"] = cause  # the kind of database error, never its text (which may quote a DSN)
    session = connection.session
    if session is not None:
        fields |= {"cursor_first": str(session.start), "cursor_last": str(session.position)}
        fields["frames"] = session.frames_sent
    fields["seconds"] = round(time.monotonic() - connection.opened, 3)
    level = logging.WARNING if reason == "internal_error" else logging.INFO
    connection.log("session closed", level, **fields)
