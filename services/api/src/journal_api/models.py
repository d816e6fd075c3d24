"""The journal's data: events as stored and read, new events as validated, filters, pages.

The rules mirror the CHECK constraints of migrations/0001_journal.sql (docs/20_EVENT_JOURNAL.md#schema), so a bad
call fails in Python, naming the field, before any SQL runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
    model_validator,
)

from journal_api.redaction import redact, redact_text

__all__ = [
    "LEVELS",
    "MAX_PAYLOAD_BYTES",
    "Channel",
    "Event",
    "EventFilter",
    "JsonObject",
    "Level",
    "NewEvent",
    "Page",
    "channel_of",
    "payload_json",
]

Level = Literal["debug", "info", "warn", "error", "critical"]
Channel = Literal["events", "trades", "snapshots"]
LEVELS: tuple[Level, ...] = get_args(Level)  # least to most severe
MAX_PAYLOAD_BYTES = 262_144

_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
_TYPE_PREFIX_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.\*$"

EventType = Annotated[str, StringConstraints(max_length=128, pattern=_TYPE_PATTERN)]
TypePattern = Annotated[str, StringConstraints(max_length=128, pattern=f"{_TYPE_PATTERN}|{_TYPE_PREFIX_PATTERN}")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64)]
JsonObject = dict[str, JsonValue]


def channel_of(event_type: str) -> Channel:
    """The channel an event type belongs to: ``trades``, ``snapshots`` or ``events``."""
    if event_type.startswith("trade."):
        return "trades"
    if event_type.startswith("snapshot."):
        return "snapshots"
    return "events"


def payload_json(payload: dict[str, Any]) -> str:
    """A payload as JSON text in Postgres' own jsonb text layout, whose length the size constraint measures."""
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


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


class NewEvent(BaseModel):
    """An event about to be appended: validated, then redacted."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    type: EventType
    payload: JsonObject
    level: Level = "info"
    public_safe: bool = False
    symbol: Label | None = None
    trade_id: Label | None = None

    @field_validator("payload", mode="after")
    @classmethod
    def _redact_payload(cls, payload: JsonObject) -> JsonObject:
        redacted: JsonObject = redact(payload)
        return redacted

    @field_validator("symbol", "trade_id", mode="after")
    @classmethod
    def _redact_label(cls, label: str | None) -> str | None:
        return redact_text(label)

    @model_validator(mode="after")
    def _check_payload_size(self) -> NewEvent:
        size = len(self.payload_text().encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"payload is {size} bytes as JSON, over the limit of {MAX_PAYLOAD_BYTES}; "
                "store large data elsewhere and put a reference in the event"
            )
        return self

    def payload_text(self) -> str:
        """The (redacted) payload as the JSON text sent to Postgres."""
        try:
            return payload_json(self.payload)
        except ValueError:
            raise ValueError("payload must be JSON: NaN and infinite numbers are not allowed") from None


class EventFilter(BaseModel):
    """Which events a reader wants: AND across fields, OR within one; omitted fields match everything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=100)
    types: list[TypePattern] | None = Field(default=None, min_length=1, max_length=100)
    symbols: list[Label] | None = Field(default=None, min_length=1, max_length=100)
    trade_ids: list[Label] | None = Field(default=None, min_length=1, max_length=100)
    min_level: Level | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of events, the newest committed id, and the position to continue from."""

    events: list[Event]
    cursor: int
    head: int
