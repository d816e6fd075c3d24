"""A realistic mix of engine events, written with plain asyncpg INSERTs (docs/20_EVENT_JOURNAL.md#the-demo-publisher).

This package never imports the API package: it writes the way the real engine does, naming only the journal's
columns and never an id.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

__all__ = ["SYMBOLS", "DemoMix", "DemoPublisher", "Row", "prepare", "publish"]

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "AAPL", "MSFT")
_PRICES = {"BTC-USD": 97_000.0, "ETH-USD": 3_400.0, "SOL-USD": 180.0, "AAPL": 230.0, "MSFT": 420.0}

_INSERT = """
    INSERT INTO events (type, level, symbol, trade_id, payload)
    VALUES ($1, $2, $3, $4, $5::jsonb)
"""
# The engine's own state, written in the same transaction as the events that describe it (an engine table, not the
# journal's: the journal never reads it).
_ORDERS = """
    CREATE TABLE IF NOT EXISTS demo_orders (
        trade_id   text PRIMARY KEY,
        symbol     text NOT NULL,
        status     text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
"""
_ORDER = """
    INSERT INTO demo_orders (trade_id, symbol, status) VALUES ($1, $2, $3)
    ON CONFLICT (trade_id) DO UPDATE SET status = excluded.status, updated_at = now()
"""
_ORDER_STATUS = {
    "order.submitted": "submitted",
    "order.acknowledged": "acknowledged",
    "order.rejected": "rejected",
    "trade.filled": "filled",
}


@dataclass(frozen=True, slots=True)
class Row:
    """One event as the engine writes it."""

    type: str
    level: str
    symbol: str | None
    trade_id: str | None
    payload: dict[str, Any]


class DemoMix:
    """An endless, reproducible stream of engine steps; each step is the events of one engine transaction."""

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)  # noqa: S311 - demo data, not cryptography
        self._trades = 0
        self._steps = 0

    def steps(self) -> Iterator[list[Row]]:
        """Engine steps, forever."""
        while True:
            yield self._step()

    def _step(self) -> list[Row]:
        rnd = self._random
        self._steps += 1
        symbol = rnd.choice(SYMBOLS)
        price = round(_PRICES[symbol] * rnd.uniform(0.98, 1.02), 2)
        side = rnd.choice(("buy", "sell"))
        rows = [
            Row(
                "decision.made",
                "info",
                symbol,
                None,
                {"action": side, "confidence": round(rnd.random(), 3), "reason": "momentum", "price": price},
            )
        ]
        if rnd.random() < 0.8:
            self._trades += 1
            trade_id = f"T-{self._trades:06d}"
            quantity = round(rnd.uniform(0.01, 5.0), 4)
            order: dict[str, Any] = {"side": side, "quantity": quantity, "limit": price, "venue": "sim"}
            if rnd.random() < 0.02:
                # A careless engine leaking a credential: the journal's redaction must hide it on every read.
                order["venue_auth"] = {"api_key": f"demo-{rnd.getrandbits(64):016x}"}
            rows.append(Row("order.submitted", "info", symbol, trade_id, order))
            if rnd.random() < 0.05:
                rows.append(Row("order.rejected", "error", symbol, trade_id, {"reason": "insufficient margin"}))
            else:
                rows.append(
                    Row(
                        "order.acknowledged",
                        "info",
                        symbol,
                        trade_id,
                        {"venue_order_id": rnd.getrandbits(32)},
                    )
                )
                rows.append(
                    Row(
                        "trade.filled",
                        "info",
                        symbol,
                        trade_id,
                        {"side": side, "quantity": quantity, "price": price},
                    )
                )
        if rnd.random() < 0.03:
            rows.append(Row("risk.limit_warning", "warn", symbol, None, {"limit": "exposure", "used_pct": 91.5}))
        if self._steps % 5 == 0:
            rows.append(Row("snapshot.position", "info", symbol, None, {"quantity": round(rnd.uniform(-3, 3), 4)}))
            rows.append(
                Row(
                    "snapshot.portfolio",
                    "info",
                    None,
                    None,
                    {"equity": round(rnd.uniform(9e5, 1.1e6), 2), "currency": "USD"},
                )
            )
        return rows


async def prepare(conn: asyncpg.Connection) -> None:
    """Create the engine's own table (``demo_orders``) if it is not there yet."""
    await conn.execute(_ORDERS)


async def publish(conn: asyncpg.Connection, rows: list[Row]) -> None:
    """Write one engine step in one transaction, as an engine does: each event next to the change of the engine's
    own state it records (the order's row in ``demo_orders``), events anywhere in the transaction."""
    async with conn.transaction():
        for row in rows:
            await conn.execute(_INSERT, row.type, row.level, row.symbol, row.trade_id, json.dumps(row.payload))
            status = _ORDER_STATUS.get(row.type)
            if status is not None:
                await conn.execute(_ORDER, row.trade_id, row.symbol, status)


class DemoPublisher:
    """Writes the demo mix at about ``rate`` events per second; ``written`` counts what was committed."""

    def __init__(self, dsn: str, *, rate: float, seed: int | None = None) -> None:
        self.written = 0
        self._dsn = dsn
        self._rate = rate
        self._seed = seed

    async def _publish(self, conn: asyncpg.Connection, rows: list[Row]) -> None:
        await publish(conn, rows)
        self.written += len(rows)

    async def run(self, count: int | None = None) -> int:
        """Write until ``count`` events were written (``None``: until cancelled); return how many."""
        loop = asyncio.get_running_loop()
        steps = DemoMix(self._seed).steps()
        conn = await asyncpg.connect(self._dsn)
        try:
            await prepare(conn)
            due = loop.time()
            while True:
                rows = next(steps)
                if count is not None:
                    rows = rows[: count - self.written]
                # A step that has started is finished and counted before a cancel (Ctrl-C) takes effect: once
                # COMMIT is sent the rows may be in the journal, and `written` must say so.
                step = asyncio.ensure_future(self._publish(conn, rows))
                try:
                    await asyncio.shield(step)
                except asyncio.CancelledError:
                    await step
                    raise
                if count is not None and self.written >= count:
                    return self.written
                # An absolute schedule, so the rate does not drift with the time the inserts take.
                due += len(rows) / self._rate
                await asyncio.sleep(max(0.0, due - loop.time()))
        finally:
            await conn.close()
