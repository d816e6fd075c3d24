"""The journal's data: events as stored and read, new events as validated, filters, pages.

The rules mirror the CHECK constraints of migrations/0001_journal.sql (docs/20_EVENT_JOURNAL.md#schema), so a bad
call fails in Python, naming the field, before any SQL runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol, get_args

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from journal_api.journal.redaction import OnMask, looks_secret, redact, redact_text

__all__ = [
    "LEVELS",
    "MAX_DEPTH",
    "MAX_ID",
    "MAX_PAYLOAD_BYTES",
    "MAX_READ_DEPTH",
    "ON_MASK",
    "Channel",
    "Event",
    "EventFilter",
    "JsonObject",
    "Level",
    "NewEvent",
    "Page",
    "Routable",
    "channel_of",
    "decode_payload",
    "payload_json",
]

Level = Literal["debug", "info", "warn", "error", "critical"]
Channel = Literal["events", "trades", "snapshots"]
LEVELS: tuple[Level, ...] = get_args(Level)  # least to most severe
MAX_PAYLOAD_BYTES = 262_144
MAX_DEPTH = 64
MAX_ID = 2**63 - 1
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**64 - 1  # what every reader (orjson, Postgres bigint) decodes exactly

_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
_TYPE_PREFIX_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.\*$"

EventType = Annotated[str, StringConstraints(max_length=128, pattern=_TYPE_PATTERN)]
TypePattern = Annotated[str, StringConstraints(max_length=128, pattern=f"{_TYPE_PATTERN}|{_TYPE_PREFIX_PATTERN}")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]
JsonObject = dict[str, JsonValue]


def channel_of(event_type: str) -> Channel:
    """The channel an event type belongs to: ``trades``, ``snapshots`` or ``events``."""
    if event_type.startswith("trade."):
        return "trades"
    if event_type.startswith("snapshot."):
        return "snapshots"
    return "events"


def payload_json(payload: dict[str, Any]) -> str:
    """A payload as JSON text laid out as Postgres prints jsonb (``", "`` and ``": "``, numbers in full), so
    its length is what the size constraint measures. Raises ``ValueError`` for anything a reader could not
    decode: NaN or infinity, integers beyond 64 bits, NUL or unpaired surrogates, nesting deeper than 64."""
    parts: list[str] = []
    _encode(payload, parts, 0)
    return "".join(parts)


def _encode(value: Any, out: list[str], depth: int) -> None:
    if isinstance(value, str):
        out.append(_string(value))
    elif value is None or isinstance(value, bool):
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        if not MIN_INTEGER <= value <= MAX_INTEGER:
            raise ValueError("payload integers must fit in 64 bits")
        out.append(str(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("payload must be JSON: NaN and infinite numbers are not allowed")
        out.append(format(Decimal(repr(value)), "f"))  # jsonb prints numbers without exponents
    else:
        if depth >= MAX_DEPTH:
            raise ValueError(f"payload is nested deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else value
        out.append("{" if isinstance(value, dict) else "[")
        for index, item in enumerate(items):
            if index:
                out.append(", ")
            if isinstance(value, dict):
                out.append(_string(item[0]) + ": ")
                item = item[1]
            _encode(item, out, depth + 1)
        out.append("}" if isinstance(value, dict) else "]")


def _string(text: str) -> str:
    if "\x00" in text:
        raise ValueError("payload text may not contain NUL (\\u0000): Postgres cannot store it")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("payload text must be valid Unicode (no unpaired surrogates)") from None
    return json.dumps(text, ensure_ascii=False)


_UNREADABLE = {"unreadable_payload": "this payload cannot be decoded as JSON by readers; read it with SQL"}
MAX_READ_DEPTH = 128  # orjson encodes at most 254 levels; redaction and clients recurse too


def decode_payload(payload: str) -> Any:
    """A stored payload, or a placeholder when plain SQL stored one that readers cannot handle (a number beyond
    double range, nesting over 128 levels): one odd row must never stop every reader."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _UNREADABLE
    return _UNREADABLE if _deeper_than(value, MAX_READ_DEPTH) else value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (iteratively: deep input must not hit recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if children and depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class Event(BaseModel):
    """One journal row as readers see it (payload already redacted)."""

    model_config = ConfigDict(frozen=True)

    id: int
    ts: datetime
    type: str
    level: Level
    public_safe: bool
    symbol: str | None
    trade_id: str | None
    payload: dict[str, Any]

    @property
    def channel(self) -> Channel:
        """The channel derived from the type."""
        return channel_of(self.type)


ON_MASK = "on_mask"
"""The validation context key under which :class:`NewEvent` finds whom to tell of each value-shape mask."""


def _on_mask(info: ValidationInfo) -> OnMask | None:
    on_mask: OnMask | None = (info.context or {}).get(ON_MASK)
    return on_mask


class NewEvent(BaseModel):
    """An event about to be appended: validated, then redacted."""

    # hide_input_in_errors: a validation error must never repeat a payload, which may hold a secret.
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", hide_input_in_errors=True)

    type: EventType
    payload: JsonObject
    level: Level = "info"
    public_safe: bool = False
    symbol: Label | None = None
    trade_id: Label | None = None

    @field_validator("payload", mode="after")
    @classmethod
    def _redact_payload(cls, payload: JsonObject, info: ValidationInfo) -> JsonObject:
        redacted: JsonObject = redact(payload, on_mask=_on_mask(info), path="payload")
        return redacted

    @field_validator("symbol", "trade_id", mode="after")
    @classmethod
    def _redact_label(cls, label: str | None, info: ValidationInfo) -> str | None:
        return redact_text(label, on_mask=_on_mask(info), path=info.field_name or "")

    _payload_text: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _check_payload_size(self) -> NewEvent:
        text = payload_json(self.payload)
        size = len(text.encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"payload is {size} bytes as JSON, over the limit of {MAX_PAYLOAD_BYTES}; "
                "store large data elsewhere and put a reference in the event"
            )
        self._payload_text = text  # measured once, sent as measured
        return self

    def payload_text(self) -> str:
        """The (redacted) payload as the JSON text sent to Postgres."""
        return self._payload_text


class Routable(Protocol):
    """What a filter looks at: an :class:`Event`, or an event's frame on the stream."""

    @property
    def type(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def symbol(self) -> str | None: ...
    @property
    def trade_id(self) -> str | None: ...
    @property
    def channel(self) -> Channel: ...


class EventFilter(BaseModel):
    """Which events a reader wants: AND across fields, OR within one; omitted fields match everything."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=100)
    types: list[TypePattern] | None = Field(default=None, min_length=1, max_length=100)
    symbols: list[Label] | None = Field(default=None, min_length=1, max_length=100)
    trade_ids: list[Label] | None = Field(default=None, min_length=1, max_length=100)
    min_level: Level | None = None

    @field_validator("symbols", "trade_ids", mode="after")
    @classmethod
    def _no_secret_values(cls, labels: list[str] | None, info: ValidationInfo) -> list[str] | None:
        # Stored secrets read back as REDACTED; a filter on one would let a client probe for it. The column's name
        # is the context (a UUID is a trade id's usual shape, not a secret there).
        column = "trade_id" if info.field_name == "trade_ids" else "symbol"
        if labels is not None and any(looks_secret(label, key=column) for label in labels):
            raise ValueError(
                "a filter value may not look like a secret (a token, key, credential, JWT or private key): "
                "filter on the event's other fields"
            )
        return labels

    def matches(self, event: Routable) -> bool:
        """Whether ``event`` passes this filter: the same rule the repository's SQL applies."""
        if self.channels is not None and event.channel not in self.channels:
            return False
        if self.types is not None and not any(
            event.type.startswith(t[:-1]) if t.endswith("*") else event.type == t for t in self.types
        ):
            return False
        if self.symbols is not None and event.symbol not in self.symbols:
            return False
        if self.trade_ids is not None and event.trade_id not in self.trade_ids:
            return False
        return self.min_level is None or LEVELS.index(event.level) >= LEVELS.index(self.min_level)


@dataclass(frozen=True, slots=True)
class Page:
    """A page of events, the newest committed id, and the position to continue from."""

    events: list[Event]
    cursor: int
    head: int
