"""Many connections: sustained fan-out (ours, the baseline, websockets' own floor) and memory per idle
connection."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from harness import Server, floor_target, start_floor
from loadgen import Target, Workers
from writers import write_events

__all__ = ["fan_out", "floor_fan_out", "memory_per_connection"]


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
