"""What the journal costs the engine's writers (issues 11 and 14): insert throughput and commit latency, against
twin tables in a database of their own and against each compared version's journal (``versions.py``).

Twins (``TWINS``, each ``LIKE events INCLUDING ALL`` with a plain sequence of its own): ``plain`` has no trigger;
``notify_row`` has the journal's per-row ``pg_notify('events', NEW.id::text)`` and nothing else (the fair baseline
of any LISTEN/NOTIFY design); ``notify_stmt`` sends one NOTIFY per statement carrying the statement's newest id.

Variants of one comparison alternate within each round, in reverse order every other round, and the median round
counts, so drift in this shared machine's speed and what one variant leaves for the next fall on all of them alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

__all__ = ["TWINS", "CommitLatency", "Insert", "commit_latency", "rounds", "throughput"]

PAYLOAD = '{"side": "buy", "quantity": 0.5, "price": 97012.5, "venue": "sim", "note": "' + "x" * 110 + '"}'

TWINS = """
CREATE TABLE plain (LIKE events INCLUDING ALL);
CREATE TABLE notify_row (LIKE events INCLUDING ALL);
CREATE TABLE notify_stmt (LIKE events INCLUDING ALL);
CREATE SEQUENCE plain_id_seq OWNED BY plain.id;
CREATE SEQUENCE notify_row_id_seq OWNED BY notify_row.id;
CREATE SEQUENCE notify_stmt_id_seq OWNED BY notify_stmt.id;
ALTER TABLE plain ALTER id SET DEFAULT nextval('plain_id_seq');
ALTER TABLE notify_row ALTER id SET DEFAULT nextval('notify_row_id_seq');
ALTER TABLE notify_stmt ALTER id SET DEFAULT nextval('notify_stmt_id_seq');
CREATE FUNCTION bench_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER notify_row AFTER INSERT ON notify_row FOR EACH ROW EXECUTE FUNCTION bench_notify_row();
CREATE FUNCTION bench_notify_newest() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    newest bigint;
BEGIN
    SELECT max(id) INTO newest FROM new_rows;
    IF newest IS NOT NULL THEN
        PERFORM pg_notify('events', newest::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER notify_stmt AFTER INSERT ON notify_stmt REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_notify_newest();
"""


@dataclass(frozen=True)
class Insert:
    """One variant: where rows go and how a writer's transaction looks."""

    dsn: str
    table: str = "events"
    rows: int = 1  # rows per INSERT statement
    work_s: float = 0.0  # other work inside the transaction after the insert (then it is begin/insert/commit)
    read_back: bool = False  # while it writes, a bare reader (bare_reader.py, its own process) reads every row

    @property
    def sql(self) -> str:
        if self.rows == 1:
            return f"INSERT INTO {self.table} (type, symbol, payload) VALUES ('trade.filled', 'BTC-USD', $1::jsonb)"  # noqa: S608 - the bench's own table names
        return (
            f"INSERT INTO {self.table} (type, symbol, payload) "  # noqa: S608 - the bench's own table names
            f"SELECT 'trade.filled', 'BTC-USD', $1::jsonb FROM generate_series(1, {self.rows})"
        )


@contextlib.asynccontextmanager
async def _reading(variant: Insert) -> AsyncIterator[None]:
    """A bare reader of ``variant``'s table for the duration, when it asks for one."""
    if not variant.read_back:
        yield
        return
    script = Path(__file__).with_name("bare_reader.py")
    reader = await asyncio.create_subprocess_exec(
        sys.executable, str(script), variant.dsn, variant.table, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert reader.stdout is not None
        if await reader.stdout.readline() != b"reading\n":
            raise RuntimeError(f"the bare reader of {variant.table} did not start (exit {await reader.wait()})")
        yield
    finally:
        if reader.returncode is None:
            reader.terminate()
        await reader.wait()


async def throughput(variant: Insert, writers: int, seconds: float) -> float:
    """Rows/s with ``writers`` connections writing as fast as they can: one autocommit INSERT per transaction, or
    ``begin; INSERT; work_s of other work (the connection idle in its transaction); commit``."""
    async with _reading(variant):
        return await _write(variant, writers, seconds)


async def _write(variant: Insert, writers: int, seconds: float) -> float:
    conns = [await asyncpg.connect(variant.dsn) for _ in range(writers)]
    sql = variant.sql
    counts = [0] * writers
    deadline = time.perf_counter() + seconds

    async def write(n: int) -> None:
        conn = conns[n]
        while time.perf_counter() < deadline:
            if variant.work_s:
                async with conn.transaction():
                    await conn.execute(sql, PAYLOAD)
                    await asyncio.sleep(variant.work_s)
            else:
                await conn.execute(sql, PAYLOAD)
            counts[n] += variant.rows

    started = time.perf_counter()
    try:
        await asyncio.gather(*(write(n) for n in range(writers)))
    finally:
        elapsed = time.perf_counter() - started
        for conn in conns:
            await conn.close()
    return sum(counts) / elapsed


async def rounds(variants: dict[str, Insert], writers: int, seconds: float, count: int) -> dict[str, float]:
    """The median over ``count`` rounds of each variant's rows/s; within a round the variants run one after the
    other, in reverse order every other round. A variant may leave work behind for the next one (autovacuum of
    the rows it wrote, WAL to recycle), so no variant always follows the same one (docs/BENCHMARKS.md)."""
    measured: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for turn in range(count):
        for name in names if turn % 2 == 0 else names[::-1]:
            measured[name].append(await throughput(variants[name], writers, seconds))
    return {name: statistics.median(values) for name, values in measured.items()}


@dataclass
class CommitLatency:
    """Seconds from sending an autocommit INSERT until its result came back, one per insert."""

    samples: list[float]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    def describe(self) -> str:
        return f"p50 {self.percentile(50) * 1e3:.2f} ms, p99 {self.percentile(99) * 1e3:.2f} ms (n={len(self.samples)})"


async def commit_latency(
    dsn: str, writers: int, rate: float, seconds: float, *, hold: bool, table: str = "events"
) -> CommitLatency:
    """``writers`` connections each committing one autocommit INSERT ``rate`` times a second for ``seconds``; with
    ``hold``, another transaction inserts an event first and stays open (idle in transaction) until they are done,
    as an engine code path that inserts its event and then waits on an exchange would."""
    holder = await asyncpg.connect(dsn)
    conns = [await asyncpg.connect(dsn) for _ in range(writers)]
    sql = Insert(dsn, table).sql
    samples: list[float] = []

    async def write(conn: asyncpg.Connection) -> None:
        started = time.perf_counter()
        n = 0
        while (now := time.perf_counter()) < started + seconds:
            await conn.execute(sql, PAYLOAD)
            samples.append(time.perf_counter() - now)
            n += 1
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))

    async def hold_then_commit() -> None:
        # commits on its own schedule: under a global id lock the writers wait for exactly this
        holding = holder.transaction()
        await holding.start()
        await holder.execute(sql, PAYLOAD)
        await asyncio.sleep(seconds + 0.2)  # outlasts the writers' whole window
        await holding.commit()

    try:
        if hold:
            holding = asyncio.create_task(hold_then_commit())
            await asyncio.sleep(0.1)  # the holder's event is in before the writers start
            await asyncio.gather(holding, *(write(conn) for conn in conns))
        else:
            await asyncio.gather(*(write(conn) for conn in conns))
    finally:
        for conn in (holder, *conns):
            await conn.close()
    return CommitLatency(samples)
