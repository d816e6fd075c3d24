"""The stream's benchmark (issue 4): our server side by side with the floor of this machine and a broadcaster
relay, in one run. Writes the measured part of docs/BENCHMARKS.md (between its ``bench:begin``/``bench:end``
markers; the rest of that file is prose about these numbers).

    uv run --group bench python services/api/bench/run.py [--quick] [--out docs/BENCHMARKS.md]

Every server runs as its own process; clients run in worker processes of the load generator (loadgen.py); the
writers run here. All of them share one clock (``time.perf_counter``, CLOCK_MONOTONIC).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import websockets
from compare import PLAN as COMPARE_PLAN
from compare import measure as measure_compare
from compare import rows as compare_rows
from loadgen import ClientResult, Target, Workers, process_cpu_s
from servers import BASELINE_SCHEMA

from journal_api.journal.embedded import EmbeddedPostgres
from journal_api.journal.migrations import apply_migrations, load_migrations
from journal_api.journal.wake import forget_hub, set_asleep

ROOT = Path(__file__).resolve().parents[3]
BENCH = Path(__file__).resolve().parent
TOKEN = "bench-token-" + uuid.uuid4().hex
PAYLOAD = json.dumps({"side": "buy", "quantity": 0.5, "price": 97012.5, "venue": "sim", "note": "x" * 110})
INSERT = "INSERT INTO {table} (type, symbol, payload) VALUES ('trade.filled', 'BTC-USD', $1::jsonb) RETURNING id"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


# figures


@dataclass
class Latencies:
    """Seconds, one per delivered event."""

    samples: list[float]
    missing: int = 0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    @property
    def p50_ms(self) -> float:
        return self.percentile(50) * 1e3

    @property
    def p99_ms(self) -> float:
        return self.percentile(99) * 1e3

    def describe(self) -> str:
        lost = f", {self.missing} not delivered" if self.missing else ""
        return f"p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms (n={len(self.samples)}{lost})"


@dataclass
class Figures:
    """Everything one run measured, by name, with the text the report shows."""

    values: dict[str, float] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, value: float, text: str) -> None:
        self.values[name], self.text[name] = value, text
        print(f"  {name}: {text}", flush=True)


# processes


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def cpu_s(self) -> float:
        return process_cpu_s(self.process.pid)

    @property
    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1])  # type: ignore[index]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(command: list[str], env: dict[str, str], log: Path, pattern: str) -> Server:
    """Start a server with its output in ``log`` (never a pipe: a full pipe would stall it); wait for its port."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return Server(process, int(match[1]), log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{command[:3]} did not start:\n{log.read_text(errors='replace')[-3000:]}")


def start_ours(dsn: str, work: Path, **settings: str) -> Server:
    command = [str(Path(sys.executable).parent / "journal"), "serve", "--port", "0"]
    env = {"DATABASE_URL": dsn, "JOURNAL_TOKENS": TOKEN, "JOURNAL_MAX_CONNECTIONS": "20000", **settings}
    return start(command, env, work / "ours.log", r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def start_baseline(dsn: str, work: Path) -> Server:
    command = [sys.executable, str(BENCH / "servers.py"), "baseline", "--dsn", dsn]
    return start(command, {}, work / "baseline.log", r"port (\d+)")


def start_floor(clients: int, duration_s: float, work: Path) -> Server:
    command = [sys.executable, str(BENCH / "servers.py"), "floor", "--clients", str(clients)]
    return start([*command, "--duration", str(duration_s)], {}, work / "floor.log", r"port (\d+)")


def ours(port: int, cursor: int | None = None) -> Target:
    hello: dict[str, Any] = {"op": "subscribe", "token": TOKEN}
    if cursor is not None:
        hello["cursor"] = str(cursor)
    return Target(
        "127.0.0.1",
        port,
        hello=json.dumps(hello).encode(),
        event_prefix=b'{"op":"event","cursor":"',
        id_end=b'"',
        live_prefix=b'{"op":"live"' if cursor is None else b'{"op":"ready"',
    )


def baseline(port: int) -> Target:
    return Target("127.0.0.1", port, hello=None, event_prefix=b'{"id":', id_end=b",", live_prefix=None)


def floor_target(port: int) -> Target:
    return Target("127.0.0.1", port, None, b'{"op": "event", "cursor": "', b'"', b'{"op":"live"')


# writers


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


# statements


_STATEMENT = re.compile(r"^\S+ \S+ \S+ \[\d+\] LOG:  (?:statement|execute [^:]*):(.*)$", re.MULTILINE)


class StatementLog:
    """Statements Postgres itself logged (``log_statement = 'all'`` on the database), less the writers' INSERTs."""

    def __init__(self, path: Path | None) -> None:
        self._path = path

    @contextlib.contextmanager
    def count(self) -> Iterator[list[int]]:
        counted: list[int] = []
        offset = self._path.stat().st_size if self._path else 0
        yield counted
        if self._path is not None:
            time.sleep(0.5)  # the log is written asynchronously by the logging collector
            with self._path.open() as file:
                file.seek(offset)
                counted.append(sum("INSERT INTO events (type" not in s for s in _STATEMENT.findall(file.read())))


# scenarios


async def floor_notify(dsn: str, count: int, rate: float) -> Latencies:
    """Raw asyncpg: pg_notify sent by one connection -> callback on a listening one."""
    listener, sender = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    arrived: asyncio.Queue[float] = asyncio.Queue()
    await listener.add_listener("bench", lambda *_: arrived.put_nowait(time.perf_counter()))
    samples = []
    try:
        for n in range(count):
            started = time.perf_counter()
            await sender.execute("SELECT pg_notify('bench', $1)", str(n))
            samples.append(await asyncio.wait_for(arrived.get(), 10) - started)
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
    finally:
        await listener.close()
        await sender.close()
    return Latencies(samples)


async def floor_notify_then_read(dsn: str, count: int, rate: float) -> Latencies:
    """What any "NOTIFY the id, then read the row" design pays before it can send anything: the writer's INSERT
    (through the journal's triggers) -> the notification -> one SELECT of that row on the listening connection."""
    listener, writer = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    read: asyncio.Queue[float] = asyncio.Queue()
    tasks: set[asyncio.Task[None]] = set()

    async def fetch(identifier: str) -> None:
        await listener.fetchrow("SELECT id, ts, type, payload::text FROM events WHERE id = $1", int(identifier))
        read.put_nowait(time.perf_counter())

    def notified(*args: Any) -> None:
        task = asyncio.create_task(fetch(args[3]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    await listener.add_listener("events", notified)
    await set_asleep(listener, "bench-floor", True)  # writers notify only while a hub may sleep (issue 14)
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            await writer.fetchval(INSERT.format(table="events"), PAYLOAD)
            samples.append(await asyncio.wait_for(read.get(), 10) - started)
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
    finally:
        await forget_hub(listener, "bench-floor")
        await listener.close()
        await writer.close()
    return Latencies(samples)


async def one_parsing_client(
    dsn: str, port: int, count: int, rate: float, statements: StatementLog
) -> tuple[Latencies, float | None]:
    """One full client (the websockets library, every frame parsed as JSON) in this process, as an operator's
    tool would be: from sending the committing INSERT to the client having parsed the event frame."""
    arrivals: list[tuple[int, float]] = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as socket:
        await socket.send(json.dumps({"op": "subscribe", "token": TOKEN}))
        while json.loads(await socket.recv())["op"] != "live":
            pass
        sent: dict[int, float] = {}

        async def receive() -> None:
            while len(arrivals) < count:
                frame = json.loads(await socket.recv())
                if frame["op"] == "event":  # may arrive before the writer has read back the INSERT's id
                    arrivals.append((int(frame["cursor"]), time.perf_counter()))

        receiving = asyncio.create_task(receive())
        with statements.count() as counted:
            await write_events(dsn, rate, count=count, sent=sent)
            await asyncio.wait_for(receiving, 60)
    samples = [at - sent[identifier] for identifier, at in arrivals]
    return Latencies(samples), counted[0] / count if counted else None


async def clients_at_rate(
    dsn: str,
    server: Server,
    target: Target,
    clients: int,
    rate: float,
    count: int,
    statements: StatementLog | None = None,
) -> tuple[Latencies, float, float, float | None]:
    """``clients`` raw clients, ``count`` events at ``rate``/s: latencies, server CPU s, generator CPU s, and
    statements per event once every client is live (subscribing costs statements of its own, not per event)."""
    workers = await asyncio.to_thread(Workers, target, clients)
    cpu = server.cpu_s
    with (statements or StatementLog(None)).count() as counted:
        sent = await write_events(dsn, rate, count=count)
        results = await asyncio.to_thread(workers.wait_for, max(sent), 60)
    per_event = counted[0] / count if counted else None
    return latencies(results, sent), server.cpu_s - cpu, workers.cpu_s, per_event


async def fan_out(
    dsn: str, server: Server, target: Target, clients: int, rate: float, seconds: float
) -> dict[str, float]:
    """Events at ``rate``/s for ``seconds`` to ``clients``: delivered frames/s from the first send to the last
    delivery (a server that cannot keep up stretches that span), and the worst lag."""
    workers = await asyncio.to_thread(Workers, target, clients)
    cpu = server.cpu_s
    sent = await write_events(dsn, rate, count=int(rate * seconds))
    results = await asyncio.to_thread(workers.wait_for, max(sent), 120)
    server_cpu = server.cpu_s - cpu
    delivered = sum(1 for r in results for i in r.ids if i in sent)
    last = max((r.times[-1] for r in results if r.times), default=float("nan"))
    span = last - min(sent.values())
    return {
        "frames_s": delivered / span,
        "delivered": delivered,
        "expected": clients * len(sent),
        "lag_s": last - max(sent.values()),
        "server_cpu_s": server_cpu,
        "generator_cpu_s": workers.cpu_s,
        "span_s": span,
    }


async def floor_fan_out(clients: int, seconds: float, work: Path) -> dict[str, float]:
    server = start_floor(clients, seconds, work)
    try:
        workers = await asyncio.to_thread(Workers, floor_target(server.port), clients)
        deadline = time.monotonic() + seconds + 60
        while not (match := re.search(r"sent (\d+)", server.log.read_text())) and time.monotonic() < deadline:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.1)
        assert match, "the floor server did not finish"
        results = await asyncio.to_thread(workers.wait_for, int(match[1]), 60)
    finally:
        server.stop()
    delivered = sum(len(r.ids) for r in results)
    first = min(r.times[0] for r in results if r.times)
    last = max(r.times[-1] for r in results if r.times)
    return {"frames_s": delivered / (last - first), "generator_cpu_s": workers.cpu_s}


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


async def replay_with_live(dsn: str, server: Server, rows: int, live_clients: int) -> dict[str, float]:
    """One client resumes from cursor 0 over ``rows`` events while ``live_clients`` tail at 10 events/s."""
    live = await asyncio.to_thread(Workers, ours(server.port), live_clients, 1)
    stop = asyncio.Event()
    writing = asyncio.create_task(write_events(dsn, 10, until=stop))
    await asyncio.sleep(1)
    cpu = server.cpu_s
    replayer = await asyncio.to_thread(Workers, ours(server.port, cursor=0), 1, 1)
    (replayed,) = await asyncio.to_thread(replayer.wait_for, rows, 600)
    server_cpu = server.cpu_s - cpu
    await asyncio.sleep(1)
    stop.set()
    sent = await writing
    live_latencies = latencies(await asyncio.to_thread(live.wait_for, max(sent), 60), sent)
    times = replayed.times
    n = sum(1 for i in replayed.ids if i <= rows)
    tenth = n // 10
    return {
        "events": n,
        "rate": n / (times[n - 1] - times[0]),
        "first_tenth": tenth / (times[tenth] - times[0]),
        "last_tenth": tenth / (times[n - 1] - times[n - 1 - tenth]),
        "live_p99_ms": live_latencies.p99_ms,
        "live_p50_ms": live_latencies.p50_ms,
        "live_n": len(live_latencies.samples),
        "live_missing": live_latencies.missing,
        "server_cpu_s": server_cpu,
        "generator_cpu_s": replayer.cpu_s,
    }


async def memory_per_connection(server: Server, target: Target, connections: int) -> dict[str, float]:
    warm = await asyncio.to_thread(Workers, target, 50, 1)  # code paths and pools warmed, then gone
    await asyncio.to_thread(warm.wait_for, 0, 0)
    await asyncio.sleep(2)
    before = server.rss_kib
    workers = await asyncio.to_thread(Workers, target, connections)
    await asyncio.sleep(3)
    after = server.rss_kib
    await asyncio.to_thread(workers.wait_for, 0, 0)
    return {"per_connection_kib": (after - before) / connections, "before_kib": before, "after_kib": after}


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


async def missed_events(
    dsn: str, port: int, *, resume: bool, writers: int, seconds: float, clients: int
) -> dict[str, int]:
    """``writers`` concurrent writers; ``clients`` that drop their connection every 0.2-1 s and reconnect, resuming
    from their last cursor when ``resume``. Counts, over all clients, the events they never received and the
    ones they received twice."""
    conn = await asyncpg.connect(dsn)
    start_id = await conn.fetchval("SELECT coalesce(max(id), 0) FROM events")
    done = asyncio.Event()
    rng = random.Random(4)  # noqa: S311 - not cryptography

    async def client() -> list[int]:
        received: list[int] = []
        cursor = start_id

        async def connection() -> bool:
            """One connection until its drop; whether the client has read everything (writers done, silence)."""
            socket = await websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=None)
            nonlocal cursor
            try:
                if resume:
                    await socket.send(json.dumps({"op": "subscribe", "token": TOKEN, "cursor": str(cursor)}))
                drop_at = time.monotonic() + rng.uniform(0.2, 1.0)
                while done.is_set() or time.monotonic() < drop_at:  # once the writers are done: read to the end
                    try:
                        frame = json.loads(await asyncio.wait_for(socket.recv(), 2 if done.is_set() else 0.1))
                    except TimeoutError:
                        if done.is_set():
                            return True
                        continue
                    if resume and frame["op"] != "event":
                        continue
                    cursor = int(frame["cursor"]) if resume else frame["id"]
                    received.append(cursor)
            except websockets.ConnectionClosed:
                return False  # dropped by the server: reconnect, as for our own drops
            finally:
                socket.transport.abort()  # a dropped connection, not a goodbye
            return False

        while not await connection():
            pass
        return received

    async def writer() -> None:
        c = await asyncpg.connect(dsn)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await c.fetchval(INSERT.format(table="events"), PAYLOAD)
            await asyncio.sleep(rng.uniform(0, 0.02))
        await c.close()

    receiving = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(0.5)
    await asyncio.gather(*(writer() for _ in range(writers)))
    done.set()
    received = await asyncio.gather(*receiving)
    expected = {r["id"] for r in await conn.fetch("SELECT id FROM events WHERE id > $1", start_id)}
    await conn.close()
    return {
        "events": len(expected),
        "missed": sum(len(expected - set(r)) for r in received),
        "duplicated": sum(len(r) - len(set(r)) for r in received),
    }


# the run


@dataclass
class Plan:
    quick: bool

    def __getattr__(self, name: str) -> Any:
        full, quick = _PLAN[name]
        return quick if self.quick else full


_PLAN: dict[str, tuple[Any, Any]] = {
    "latency_events": (300, 50),
    "latency_rate": (10.0, 50.0),
    "many_clients": ((100, 1000), (20, 100)),
    "fan_out_clients": (1000, 100),
    "fan_out_rate": (400.0, 100.0),
    "fan_out_seconds": (10.0, 3.0),
    "replay_rows": (1_000_000, 20_000),
    "live_clients": (10, 5),
    "memory_connections": (5000, 200),
    "insert_writers": ((1, 2, 8), (1, 8)),
    "insert_seconds": (2.0, 0.5),
    "insert_rounds": (4, 1),
    "missed_seconds": (10.0, 2.0),
    **COMPARE_PLAN,
}


def database_dsn(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def create_database(admin: asyncpg.Connection, server_url: str, schema: str | None) -> str:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = database_dsn(server_url, name)
    conn = await asyncpg.connect(dsn)
    if schema is None:
        await apply_migrations(conn, load_migrations(ROOT / "migrations"))
        await conn.execute(
            "CREATE TABLE plain_events (LIKE events INCLUDING ALL);"
            "CREATE SEQUENCE plain_events_id_seq OWNED BY plain_events.id;"
            "ALTER TABLE plain_events ALTER id SET DEFAULT nextval('plain_events_id_seq')"
        )
    else:
        await conn.execute(schema)
    await conn.close()
    return name


@contextlib.asynccontextmanager
async def running(server: Server) -> AsyncIterator[Server]:
    try:
        yield server
    finally:
        server.stop()


async def measure(server_url: str, plan: Plan, log: Path | None, work: Path) -> Figures:
    figures = Figures()
    admin = await asyncpg.connect(server_url)
    names = [await create_database(admin, server_url, None), await create_database(admin, server_url, BASELINE_SCHEMA)]
    dsn, base_dsn = (database_dsn(server_url, n) for n in names)
    statements = StatementLog(log)
    try:
        print("latency", flush=True)
        floor = await floor_notify(dsn, plan.latency_events, plan.latency_rate)
        figures.set("floor_notify", floor.p50_ms, floor.describe())
        design = await floor_notify_then_read(dsn, plan.latency_events, plan.latency_rate)
        figures.set("floor_read", design.p50_ms, design.describe())
        if log is not None:
            await admin.execute(f"ALTER DATABASE {names[0]} SET log_statement = 'all'")
        async with running(start_ours(dsn, work)) as server:
            one, statements_per_event = await one_parsing_client(
                dsn, server.port, plan.latency_events, plan.latency_rate, statements
            )
            figures.set("one_client", one.p50_ms, f"{one.describe()}; {one.p50_ms / floor.p50_ms:.1f}x the floor's p50")
            figures.values["one_client_p99"] = one.p99_ms
            per_event: dict[int, float] = {}
            if statements_per_event is not None:
                per_event[1] = statements_per_event
            for n in plan.many_clients:
                lat, server_cpu, gen_cpu, statements_per_event = await clients_at_rate(
                    dsn, server, ours(server.port), n, plan.latency_rate, plan.latency_events, statements
                )
                figures.set(
                    f"ours_{n}",
                    lat.p99_ms,
                    f"{lat.describe()}; CPU server {server_cpu:.2f} s, generator {gen_cpu:.2f} s",
                )
                if statements_per_event is not None:
                    per_event[n] = statements_per_event
        if log is not None:
            await admin.execute(f"ALTER DATABASE {names[0]} RESET log_statement")
        for n, value in per_event.items():
            figures.set(f"statements_{n}", value, f"{value:.3f}")
        async with running(start_baseline(base_dsn, work)) as server:
            for n in plan.many_clients:
                lat, server_cpu, gen_cpu, _ = await clients_at_rate(
                    base_dsn, server, baseline(server.port), n, plan.latency_rate, plan.latency_events
                )
                figures.set(
                    f"base_{n}",
                    lat.p99_ms,
                    f"{lat.describe()}; CPU server {server_cpu:.2f} s, generator {gen_cpu:.2f} s",
                )

        print("fan-out", flush=True)
        clients, rate, seconds = plan.fan_out_clients, plan.fan_out_rate, plan.fan_out_seconds
        floor_out = await floor_fan_out(clients, seconds, work)
        figures.set(
            "floor_fan_out",
            floor_out["frames_s"],
            f"{floor_out['frames_s']:,.0f} frames/s (generator CPU {floor_out['generator_cpu_s']:.1f} s)",
        )
        for name, starter, target, db in (
            ("ours", lambda: start_ours(dsn, work), ours, dsn),
            ("base", lambda: start_baseline(base_dsn, work), baseline, base_dsn),
        ):
            async with running(starter()) as server:
                out = await fan_out(db, server, target(server.port), clients, rate, seconds)
            figures.set(
                f"{name}_fan_out",
                out["frames_s"],
                f"{out['frames_s']:,.0f} frames/s ({out['delivered']:,} of {out['expected']:,} delivered in "
                f"{out['span_s']:.1f} s; last {out['lag_s']:.2f} s after the last write; CPU server "
                f"{out['server_cpu_s']:.1f} s, generator {out['generator_cpu_s']:.1f} s)",
            )

        print("memory", flush=True)
        async with running(start_ours(dsn, work)) as server:
            mem = await memory_per_connection(server, ours(server.port), plan.memory_connections)
        figures.set(
            "memory",
            mem["per_connection_kib"],
            f"{mem['per_connection_kib']:.1f} KiB ({plan.memory_connections:,} subscribed idle connections; "
            f"server RSS {mem['before_kib'] / 1024:.0f} -> {mem['after_kib'] / 1024:.0f} MiB)",
        )
        async with running(start_baseline(base_dsn, work)) as server:
            mem = await memory_per_connection(server, baseline(server.port), plan.memory_connections)
        figures.set("base_memory", mem["per_connection_kib"], f"{mem['per_connection_kib']:.1f} KiB")

        print("inserts", flush=True)
        # No stream server runs here: this is what the triggers cost the writers. Plain and journal runs alternate
        # in short rounds, so drift in this shared machine's speed falls on both alike.
        for n in plan.insert_writers:
            plain = journal = 0.0
            for _ in range(plan.insert_rounds):
                plain += await insert_throughput(dsn, "plain_events", n, plan.insert_seconds)
                journal += await insert_throughput(dsn, "events", n, plan.insert_seconds)
            plain, journal = plain / plan.insert_rounds, journal / plan.insert_rounds
            figures.set(
                f"inserts_{n}", journal / plain, f"{journal / plain:.2f} ({journal:,.0f} vs {plain:,.0f} rows/s)"
            )

        await measure_compare(admin, server_url, plan, log, work, names, figures.set)

        print("missed events", flush=True)
        for name, starter, db, resume in (
            ("ours", lambda: start_ours(dsn, work), dsn, True),
            ("base", lambda: start_baseline(base_dsn, work), base_dsn, False),
        ):
            async with running(starter()) as server:
                missed = await missed_events(
                    db, server.port, resume=resume, writers=8, seconds=plan.missed_seconds, clients=10
                )
            figures.set(
                f"missed_{name}",
                missed["missed"],
                f"{missed['missed']:,} missed, {missed['duplicated']} twice ({missed['events']:,} events, 10 clients)",
            )

        print("replay", flush=True)
        # a journal of its own: exactly `rows` events, loaded through the real triggers
        names.append(await create_database(admin, server_url, None))
        replay_dsn = database_dsn(server_url, names[-1])
        load_rate = await load_rows(replay_dsn, plan.replay_rows)
        print(f"  loaded {plan.replay_rows:,} rows at {load_rate:,.0f} rows/s", flush=True)
        async with running(start_ours(replay_dsn, work)) as server:
            idle = await clients_at_rate(replay_dsn, server, ours(server.port), plan.live_clients, 10, 100)
            replay = await replay_with_live(replay_dsn, server, plan.replay_rows, plan.live_clients)
        figures.set(
            "replay",
            replay["rate"],
            f"{replay['rate']:,.0f} events/s over {replay['events']:,} events; first 10% "
            f"{replay['first_tenth']:,.0f}/s, last 10% {replay['last_tenth']:,.0f}/s (CPU server "
            f"{replay['server_cpu_s']:.1f} s, generator {replay['generator_cpu_s']:.1f} s)",
        )
        figures.values["replay_ratio"] = replay["last_tenth"] / replay["first_tenth"]
        figures.set("live_idle", idle[0].p99_ms, idle[0].describe())
        figures.set(
            "live_replay",
            replay["live_p99_ms"],
            f"p50 {replay['live_p50_ms']:.2f} ms, p99 {replay['live_p99_ms']:.2f} ms "
            f"(n={replay['live_n']:.0f}, {replay['live_missing']:.0f} not delivered)",
        )
    finally:
        for name in names:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    return figures


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def report(f: Figures, plan: Plan, command: str) -> str:
    v, t = f.values, f.text

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    small, large = plan.many_clients
    rows = [
        ("NOTIFY floor: `pg_notify` -> asyncpg listener callback", "reference", t["floor_notify"], ""),
        (
            "design floor: INSERT -> NOTIFY -> SELECT of that row on the listener (no server, no client)",
            "reference",
            t["floor_read"],
            "",
        ),
        (
            f"commit -> client-parsed latency, 1 client at {plan.latency_rate:g}/s",
            "p50 <= 1.5 ms and <= 5x floor p50; p99 <= 5 ms",
            t["one_client"],
            verdict(v["one_client"] <= 1.5 and v["one_client"] <= 5 * v["floor_notify"] and v["one_client_p99"] <= 5),
        ),
        (
            f"commit -> raw receive, {small} clients at {plan.latency_rate:g}/s",
            "p99 <= 20 ms, <= baseline",
            t[f"ours_{small}"],
            verdict(v[f"ours_{small}"] <= 20 and v[f"ours_{small}"] <= v[f"base_{small}"]),
        ),
        (f"baseline, {small} clients", "reference", t[f"base_{small}"], ""),
        (
            f"commit -> raw receive, {large} clients at {plan.latency_rate:g}/s",
            "p99 <= 100 ms, <= baseline",
            t[f"ours_{large}"],
            verdict(v[f"ours_{large}"] <= 100 and v[f"ours_{large}"] <= v[f"base_{large}"]),
        ),
        (f"baseline, {large} clients", "reference", t[f"base_{large}"], ""),
    ]
    if "statements_1" in v:
        worst = max(v[k] for k in v if k.startswith("statements_"))
        ratio = v[f"statements_{large}"] / v["statements_1"]
        rows.append(
            (
                f"database statements per event at 1 / {small} / {large} clients",
                "<= 1.0; 1000-client / 1-client <= 1.05",
                f"{t['statements_1']} / {t[f'statements_{small}']} / {t[f'statements_{large}']}",
                verdict(worst <= 1.0 and ratio <= 1.05),
            )
        )
    rows += [
        (
            f"floor: websockets `broadcast()` to {plan.fan_out_clients} clients, no database",
            "reference",
            t["floor_fan_out"],
            "",
        ),
        (
            f"sustained fan-out at {plan.fan_out_clients} clients ({plan.fan_out_rate:g} events/s offered)",
            ">= 150,000 frames/s and >= baseline",
            t["ours_fan_out"],
            verdict(v["ours_fan_out"] >= 150_000 and v["ours_fan_out"] >= v["base_fan_out"]),
        ),
        ("baseline fan-out, same load", "reference", t["base_fan_out"], ""),
        (
            f"backlog replay of {plan.replay_rows:,} rows to one resuming client",
            ">= 50,000 events/s; last 10% >= 0.9x first",
            t["replay"],
            verdict(v["replay"] >= 50_000 and v["replay_ratio"] >= 0.9),
        ),
        (
            f"live p99, {plan.live_clients} clients at 10/s, idle / during that replay",
            "during <= 2x idle",
            f"{t['live_idle']} / {t['live_replay']}",
            verdict(v["live_replay"] <= 2 * v["live_idle"]),
        ),
        (
            f"memory per idle connection at {plan.memory_connections:,} connections",
            "<= 32 KiB",
            t["memory"],
            verdict(v["memory"] <= 32),
        ),
        ("baseline memory per idle connection", "reference", t["base_memory"], ""),
    ]
    rows += [
        (
            f"insert throughput, triggers / plain table, {n} writer{'s' if n > 1 else ''}",
            ">= 0.8 at 1 writer" if n == 1 else "report",
            t[f"inserts_{n}"],
            verdict(v[f"inserts_{n}"] >= 0.8) if n == 1 else "",
        )
        for n in plan.insert_writers
    ]
    rows += [
        (
            "events missed under 8 writers, clients dropping and resuming",
            "ours 0",
            t["missed_ours"],
            verdict(v["missed_ours"] == 0 and "0 twice" in t["missed_ours"]),
        ),
        ("baseline, same (reconnect; it has no cursor)", "report", t["missed_base"], ""),
    ]
    rows += compare_rows(v, t, plan)
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    return f"""{BEGIN}
Machine: {machine()}. Servers, load generator and Postgres share it.
Command: `{command}`; run on {time.strftime("%Y-%m-%d")}.

| figure | target | measured | |
|---|---|---|---|
{table}
{END}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run (small numbers)")
    parser.add_argument("--out", type=Path, help="replace the measured part of this file (default: print it)")
    args = parser.parse_args()
    command = "make bench" + ("-quick" if args.quick else "")
    plan = Plan(args.quick)
    work = Path(tempfile.mkdtemp(prefix="journal-bench-"))
    server_url = os.environ.get("DATABASE_URL")
    embedded = None
    if not server_url:
        embedded = EmbeddedPostgres(work / "pg", on_stop="delete")
        server_url = embedded.dsn
    try:
        figures = asyncio.run(measure(server_url, plan, embedded.log if embedded else None, work))
    finally:
        if embedded is not None:
            embedded.stop()
    text = report(figures, plan, command)
    if args.out:
        old = args.out.read_text()
        args.out.write_text(old[: old.index(BEGIN)] + text + old[old.index(END) + len(END) :])
        print(f"wrote {args.out}")
    print(text)


if __name__ == "__main__":
    main()
