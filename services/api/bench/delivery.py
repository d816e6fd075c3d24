"""One client's delivery from a version's stream server at a given write rate (issues 11 and 14): latency from
sending the committing INSERT to the raw client receiving the frame, database statements per event, and the share
of writing transactions that sent a NOTIFY.

- Latency: one raw load-generator client (``loadgen.py``, its own process) subscribed live; one writer
  connection here per 500 events/s asked commits one event per autocommit INSERT, together at the rate asked.
- Statements: every statement Postgres logged (``log_statement = 'all'`` set on the journal's database before the
  server connected) while the events were written and delivered, less the writer's INSERTs, over the events.
- NOTIFYs: an extra connection LISTENs on channel ``events`` in the journal's database and counts notifications
  during the run; over the transactions written (one event each), that is the share that notified.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from loadgen import Workers
from versions import Running, target
from writer_cost import PAYLOAD, CommitLatency

__all__ = ["Delivery", "deliver", "pooled"]

_INSERT = "INSERT INTO events (type, symbol, payload) VALUES ('trade.filled', 'BTC-USD', $1::jsonb) RETURNING id"
_STATEMENT = re.compile(r"^\S+ \S+ \S+ \[\d+\] LOG:  (?:statement|execute [^:]*):(.*)$", re.MULTILINE)


@dataclass
class Delivery:
    events: int  # written
    latency: CommitLatency
    missing: int
    offered: float  # events/s the writer achieved
    statements_per_event: float | None  # None: no statement log (an external DATABASE_URL)
    notify_share: float

    def describe(self) -> str:
        lost = f", {self.missing} not delivered" if self.missing else ""
        return f"{self.latency.describe()[:-1]}{lost}; {self.offered:,.0f} events/s written)"


def pooled(parts: list[Delivery]) -> Delivery:
    """Deliveries of one row measured in several rounds, as one: every latency sample, and the other figures
    weighted by the events each round wrote."""
    events = sum(part.events for part in parts)

    def weighted(values: list[float]) -> float:
        return sum(value * part.events for value, part in zip(values, parts, strict=True)) / events

    statements = [part.statements_per_event for part in parts]
    return Delivery(
        events,
        CommitLatency([sample for part in parts for sample in part.latency.samples]),
        sum(part.missing for part in parts),
        weighted([part.offered for part in parts]),
        None if None in statements else weighted([s for s in statements if s is not None]),
        weighted([part.notify_share for part in parts]),
    )


def _log_size(log: Path | None) -> int:
    return log.stat().st_size if log else 0


def _statements_since(log: Path, offset: int) -> int:
    """Statements logged after ``offset``, less the writer's INSERTs."""
    with log.open() as file:
        file.seek(offset)
        return sum("INSERT INTO events (type" not in s for s in _STATEMENT.findall(file.read()))


async def deliver(dsn: str, server: Running, token: str, rate: float, count: int, log: Path | None) -> Delivery:
    """``count`` events at ``rate``/s to one live raw client of ``server``."""
    listener = await asyncpg.connect(dsn)
    notified = 0

    def on_notify(*_: Any) -> None:
        nonlocal notified
        notified += 1

    await listener.add_listener("events", on_notify)
    workers = await asyncio.to_thread(Workers, target(server.port, token), 1, 1)
    # one connection per 500 events/s asked: one alone cannot keep 2,000/s on a busy box
    writers = [await asyncpg.connect(dsn) for _ in range(max(1, math.ceil(rate / 500)))]
    offset = _log_size(log)
    sent: dict[int, float] = {}

    async def write(k: int) -> None:
        for n in range(k, count, len(writers)):
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            at = time.perf_counter()
            sent[await writers[k].fetchval(_INSERT, PAYLOAD)] = at

    try:
        started = time.perf_counter()
        await asyncio.gather(*(write(k) for k in range(len(writers))))
        offered = count / (time.perf_counter() - started)
        (result,) = await asyncio.to_thread(workers.wait_for, max(sent), 60)
        await asyncio.sleep(0.5)  # the last notifications reach the listener; the log collector writes the log
    finally:
        for writer in writers:
            await writer.close()
        await listener.close()
    samples = [t - sent[i] for i, t in zip(result.ids, result.times, strict=True) if i in sent]
    per_event = None if log is None else _statements_since(log, offset) / count
    return Delivery(count, CommitLatency(samples), count - len(samples), offered, per_event, notified / count)
