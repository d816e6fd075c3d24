"""Event frames as the stream sends them: built once from a row, straight to the bytes on the wire.

A server's WebSocket frames are not masked, so the bytes of one event's frame are the same for every client: the
hub builds them once per event and every session writes them as they are (docs/30_WS_PROTOCOL.md#cost). Building
skips the pydantic model of the repository's read path, and the payload's JSON text is copied into the frame as
Postgres printed it when it holds nothing redaction would change and nothing a reader could not decode; any other
payload takes the repository's path (decode, redact, encode), so both paths send the same values
(docs/20_EVENT_JOURNAL.md#redaction).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

import asyncpg
import orjson

from journal_api.journal.leaks import OnLeak
from journal_api.journal.models import MAX_READ_DEPTH, Channel, channel_of, decode_payload
from journal_api.journal.redaction import OnMask, may_hold_secrets, redact, redact_text

__all__ = ["Frame", "frame_from_row", "text_frame"]

# jsonb prints numbers in full, never with an exponent. Twenty digits, or a minus and nineteen, may be an integer
# beyond 64 bits (which readers decode as a double) or beyond a double's range (unreadable); anything shorter reads
# the same either way. One character class first (the same language as `-[0-9]{19}|[0-9]{20}`) lets the regex
# engine skip ahead to the next digit or minus: 2.6x faster on the bench's payload, checked for every live event.
_LONG_NUMBER = re.compile(r"[-0-9][0-9]{19}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One event's frame on the wire, with the fields filters look at."""

    id: int
    type: str
    level: str
    symbol: str | None
    trade_id: str | None
    wire: bytes

    @property
    def channel(self) -> Channel:
        return channel_of(self.type)


def text_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked WebSocket text frame (RFC 6455 section 5.2), as a server sends it."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


def frame_from_row(row: asyncpg.Record, on_leak: OnLeak | None = None) -> Frame:
    """The frame of a row read with the repository's columns, redacted as every read is; ``on_leak`` is told of
    each value-shape mask (the hub counts them once per event, docs/20_EVENT_JOURNAL.md#redaction)."""
    identifier = row["id"]
    text = str(identifier)
    on_mask = None if on_leak is None else partial(on_leak, identifier, row["type"])
    symbol = redact_text(row["symbol"], on_mask=on_mask, path="symbol")
    trade_id = redact_text(row["trade_id"], on_mask=on_mask, path="trade_id")
    body = orjson.dumps(
        {
            "op": "event",
            "cursor": text,
            "event": {
                "id": text,
                "ts": row["ts"].isoformat(timespec="microseconds"),
                "type": row["type"],
                "channel": channel_of(row["type"]),
                "level": row["level"],
                "public_safe": row["public_safe"],
                "symbol": symbol,
                "trade_id": trade_id,
                "payload": _payload(row["payload"], on_mask),
            },
        }
    )
    return Frame(identifier, row["type"], row["level"], symbol, trade_id, text_frame(body))


def _payload(text: str, on_mask: OnMask | None) -> Any:
    """The payload for the frame: its stored text when that is safe to copy, else the decoded, redacted value."""
    if (
        may_hold_secrets(text)
        or _LONG_NUMBER.search(text)
        or text.count("{") + text.count("[") > MAX_READ_DEPTH  # more brackets than that could nest too deep
    ):
        return redact(decode_payload(text), on_mask=on_mask, path="payload")
    return orjson.Fragment(text)
