"""Protocol journal.v1: the client's messages, the server's frames, the close codes (docs/30_WS_PROTOCOL.md).

Pure functions and data: no socket and no database here.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import SecretStr, ValidationError

from journal_api.journal.models import MAX_ID, EventFilter

__all__ = [
    "CLOSE_CODES",
    "PONG",
    "UNAUTHORIZED_MESSAGE",
    "ErrorCode",
    "ProtocolError",
    "Subscription",
    "auth_ok_frame",
    "auth_token",
    "bearer_token",
    "error_frame",
    "expiring_frame",
    "heartbeat_frame",
    "is_ping",
    "known_token",
    "live_frame",
    "parse_subscribe",
    "ready_frame",
    "subscribe_token",
]


ErrorCode = Literal[
    "bad_request",
    "bad_cursor",
    "bad_filter",
    "unauthorized",
    "token_expired",
    "token_revoked",
    "forbidden",
    "auth_timeout",
    "cursor_ahead",
    "epoch_mismatch",
    "overloaded",
    "slow_consumer",
    "internal_error",
]

CLOSE_CODES: dict[ErrorCode, int] = {  # the close code each error ends a connection with
    "bad_request": 4400,
    "bad_cursor": 4400,
    "bad_filter": 4400,
    "unauthorized": 4401,
    "token_expired": 4401,
    "token_revoked": 4401,
    "forbidden": 4403,
    "auth_timeout": 4408,
    "cursor_ahead": 4409,
    "epoch_mismatch": 4409,
    "overloaded": 4429,
    "slow_consumer": 4429,
    "internal_error": 1011,
}

_FIELDS = ("op", "token", "cursor", "epoch", "filter")
_CURSOR_TEXT = re.compile(r"[0-9]{1,19}")  # used with fullmatch: "$" would let "1\n" through
PONG = '{"op":"pong"}'
_PING = '{"op":"ping"}'


class ProtocolError(Exception):
    """A client error: the server sends an error frame with ``code`` and ``message``, then closes."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.close_code = CLOSE_CODES[code]


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a valid subscribe message asked for."""

    cursor: int | None
    epoch: str | None
    filter: EventFilter


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header; ``""`` (never valid) for any other scheme."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


UNAUTHORIZED_MESSAGE = 'missing or wrong token: send "Authorization: Bearer <token>" or "token" in subscribe'


def subscribe_token(text: str | None, *, header_token: str | None) -> tuple[str, dict[str, Any]]:
    """The first checks of the spec's order: the message's shape, then that one credential was sent (in the header,
    the message, or the same string in both). Return the credential, still to be authenticated, and the message
    for :func:`parse_subscribe`. Raise :class:`ProtocolError` on the first fault."""
    message = _json_object(text, 'the first message must be a JSON object: {"op":"subscribe", ...}')
    if message.get("op") != "subscribe":
        raise ProtocolError("bad_request", 'the first message must be {"op":"subscribe", ...}')
    unknown = sorted(set(message) - set(_FIELDS))
    if unknown:
        raise ProtocolError(
            "bad_request", f"unknown field(s) {', '.join(unknown)}; a subscribe has only {', '.join(_FIELDS)}"
        )
    epoch = message.get("epoch")
    if epoch is not None and not isinstance(epoch, str):
        raise ProtocolError("bad_request", "epoch must be the string the ready frame gave")
    candidates = [t for t in (header_token, message.get("token")) if t is not None]
    if not candidates or not all(isinstance(t, str) and t for t in candidates):
        raise ProtocolError("unauthorized", UNAUTHORIZED_MESSAGE)
    first: str = candidates[0]
    if not all(hmac.compare_digest(first.encode(), t.encode()) for t in candidates):
        raise ProtocolError("unauthorized", UNAUTHORIZED_MESSAGE)
    return first, message


def parse_subscribe(message: dict[str, Any]) -> Subscription:
    """The rest of the first message, once its credential is authenticated: the cursor, then the filter."""
    cursor = _cursor(message.get("cursor"))
    event_filter = _filter(message.get("filter"))
    return Subscription(cursor=cursor, epoch=message.get("epoch"), filter=event_filter)


def auth_token(text: str | None) -> str | None:
    """The credential of an ``{"op":"auth","token":…}`` message; ``None`` when the message is not one."""
    try:
        message: object = orjson.loads(text or "")
    except orjson.JSONDecodeError:
        return None
    if isinstance(message, dict) and message.keys() == {"op", "token"} and message["op"] == "auth":
        token = message["token"]
        return token if isinstance(token, str) and token else None
    return None


def is_ping(text: str | None) -> bool:
    """Whether a message after subscribing is a ping (the only message allowed then)."""
    if text == _PING:
        return True
    try:
        message: object = orjson.loads(text or "")
    except orjson.JSONDecodeError:
        return False
    return message == {"op": "ping"}


def ready_frame(epoch: str, cursor: int, head: int) -> str:
    return _dumps({"op": "ready", "epoch": epoch, "cursor": str(cursor), "head": str(head)})


def live_frame(cursor: int) -> str:
    return _dumps({"op": "live", "cursor": str(cursor)})


def heartbeat_frame(cursor: int, head: int, now: datetime) -> str:
    return _dumps(
        {"op": "heartbeat", "cursor": str(cursor), "head": str(head), "ts": now.isoformat(timespec="microseconds")}
    )


def expiring_frame(exp: int) -> str:
    return _dumps({"op": "expiring", "exp": exp})


def auth_ok_frame(exp: int | None) -> str:
    return _dumps({"op": "auth_ok", "exp": exp})


def error_frame(error: ProtocolError) -> str:
    return _dumps({"op": "error", "code": error.code, "message": error.message})


def _dumps(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


def _json_object(text: str | None, problem: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text) if text is not None else None
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ProtocolError("bad_request", problem)
    return value


def known_token(candidate: str, tokens: Sequence[SecretStr]) -> bool:
    """Constant-time membership: every configured token is compared, whatever matched before."""
    found = False
    for token in tokens:
        found |= hmac.compare_digest(candidate.encode(), token.get_secret_value().encode())
    return found


def _cursor(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and _CURSOR_TEXT.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        number = -1
    if not 0 <= number <= MAX_ID:
        raise ProtocolError(
            "bad_cursor", 'cursor must be an event id as a decimal string ("0" for everything), or null for live only'
        )
    return number


def _filter(value: object) -> EventFilter:
    if value is None:
        return EventFilter()
    try:
        return EventFilter.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'filter'}: {error['msg']}" for error in exc.errors()
        )
        raise ProtocolError("bad_filter", f"bad filter: {problems}") from None
