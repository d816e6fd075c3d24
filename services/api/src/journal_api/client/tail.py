"""``journal tail``: print the stream, keep the cursor, reconnect and resume (docs/30_WS_PROTOCOL.md#journal-tail).

A thin shell over :mod:`journal_api.client`, which does the reconnecting and resuming.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from journal_api.client.subscriber import Event, Subscriber, TokenProvider, subscribe

__all__ = ["Tail", "pretty_line"]


def pretty_line(event: Event) -> str:
    """One readable line for an event."""
    ts = event.ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = orjson.dumps(event.payload).decode()
    return f"{event.id} {ts} {event.level:<5} {event.type} {event.symbol or '-'} {event.trade_id or '-'} {payload}"


@dataclass
class Tail:
    """A resuming subscriber that prints events. :meth:`run` returns only when the server refuses for good, by
    raising :class:`journal_api.client.ClientError`."""

    url: str
    token: str | TokenProvider = field(repr=False)  # never in a repr, so never in a log
    cursor: str | None = None
    filter: dict[str, Any] = field(default_factory=dict)
    pretty: bool = False
    cursor_file: Path | None = None
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr

    _events: Subscriber = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Here, not in run(): a bad URL (ValueError) or cursor file (ClientError) is reported before any loop runs.
        self._events = subscribe(
            self.url,
            token=self.token,
            cursor=self.cursor,
            filter=self.filter,
            cursor_file=self.cursor_file,
            on_retry=self._say_retry,
        )

    async def run(self) -> None:
        async with self._events as events:
            async for event in events:
                line = pretty_line(event) if self.pretty else orjson.dumps(event.wire).decode()
                print(line, file=self.out, flush=True)

    def _say_retry(self, problem: str, delay_s: float) -> None:
        print(f"journal tail: {problem}; reconnecting in {delay_s:.1f} s", file=self.err, flush=True)
