"""Resuming: a backlog replay beside live clients, and events missed by clients that drop and resume while
several writers commit."""

from __future__ import annotations

import asyncio
import json
import random
import time

import asyncpg
import websockets
from harness import TOKEN, Server, ours
from loadgen import Workers
from writers import INSERT, PAYLOAD, latencies, write_events

__all__ = ["missed_events", "replay_with_live"]


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
