"""The writing side: events at a steady rate (with each id's send time), a bulk load through the real
triggers, and insert throughput with and without them."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
from figures import Latencies
from loadgen import ClientResult

__all__ = ["INSERT", "PAYLOAD", "insert_throughput", "latencies", "load_rows", "write_events"]

PAYLOAD = json.dumps({"side": "buy", "quantity": 0.5, "price": 97012.5, "venue": "sim", "note": "x" * 110})
INSERT = "INSERT INTO {table} (type, symbol, payload) VALUES ('trade.filled', 'BTC-USD', $1::jsonb) RETURNING id"


async def write_events(
    dsn: str,
    rate: float,
    *,
    count: int | None = None,
    until: asyncio.Event | None = None,
    sent: dict[int, float] | None = None,
) -> dict[int, float]:
    """Insert one event per statement (autocommit) at ``rate`` per second, ``count`` of them or until ``until``
    is set; return (and fill ``sent`` with, as they happen) each id's send time."""
    sent = {} if sent is None else sent
    conn = await asyncpg.connect(dsn)
    sql = INSERT.format(table="events")
    started = time.perf_counter()
    try:
        n = 0
        while (count is None or n < count) and (until is None or not until.is_set()):
            at = time.perf_counter()
            sent[await conn.fetchval(sql, PAYLOAD)] = at
            n += 1
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
    finally:
        await conn.close()
    return sent


def latencies(results: list[ClientResult], sent: dict[int, float]) -> Latencies:
    samples = [t - sent[i] for r in results for i, t in zip(r.ids, r.times, strict=True) if i in sent]
    return Latencies(samples, missing=len(results) * len(sent) - len(samples))


async def load_rows(dsn: str, rows: int) -> float:
    """``rows`` events through the real triggers, 50,000 per transaction; returns the rate."""
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    try:
        for first in range(0, rows, 50_000):
            await conn.execute(
                "INSERT INTO events (type, symbol, payload) SELECT 'trade.filled', 'BTC-USD', $1::jsonb "
                "FROM generate_series(1, $2)",
                PAYLOAD,
                min(50_000, rows - first),
            )
    finally:
        await conn.close()
    return rows / (time.perf_counter() - started)


async def insert_throughput(dsn: str, table: str, writers: int, seconds: float) -> float:
    """Rows/s with ``writers`` connections each inserting one row per statement as fast as they can."""
    conns = [await asyncpg.connect(dsn) for _ in range(writers)]
    sql = INSERT.format(table=table)
    deadline = time.perf_counter() + seconds
    counts = [0] * writers

    async def write(n: int) -> None:
        while time.perf_counter() < deadline:
            await conns[n].fetchval(sql, PAYLOAD)
            counts[n] += 1

    started = time.perf_counter()
    await asyncio.gather(*(write(n) for n in range(writers)))
    elapsed = time.perf_counter() - started
    for conn in conns:
        await conn.close()
    return sum(counts) / elapsed
