"""Latency scenarios: the NOTIFY and design floors, one parsing client, and many raw clients at a rate, with the
database statements per event counted from Postgres' own log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import websockets
from figures import Latencies
from harness import TOKEN, Server
from loadgen import Target, Workers
from writers import INSERT, PAYLOAD, latencies, write_events

from journal_api.journal.wake import forget_hub, set_asleep

__all__ = ["StatementLog", "clients_at_rate", "floor_notify", "floor_notify_then_read", "one_parsing_client"]

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
