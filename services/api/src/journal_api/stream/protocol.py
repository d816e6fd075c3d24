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
    "ErrorCode",
    "ProtocolError",
    "Subscription",
    "bearer_token",
    "error_frame",
    "heartbeat_frame",
    "is_ping",
    "known_token",
    "live_frame",
    "parse_subscribe",
    "ready_frame",
]


ErrorCode = Literal[
    "bad_request",
    "bad_cursor",
    "bad_filter",
    "unauthorized",
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


def parse_subscribe(text: str | None, *, header_token: str | None, tokens: Sequence[SecretStr]) -> Subscription:
    """Validate the first message in the order the spec gives; raise :class:`ProtocolError` on the first fault."""
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
    token = message.get("token")
    candidates = [t for t in (header_token, token) if t is not None]
    if not candidates or not all(isinstance(t, str) and known_token(t, tokens) for t in candidates):
        raise ProtocolError(
            "unauthorized", 'missing or wrong token: send "Authorization: Bearer <token>" or "token" in subscribe'
        )
    cursor = _cursor(message.get("cursor"))
    event_filter = _filter(message.get("filter"))
    return Subscription(cursor=cursor, epoch=epoch, filter=event_filter)


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
