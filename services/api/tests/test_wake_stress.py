"""No committed row is stranded while hubs sleep: bursts of every writing pattern, then quiet pairs (a commit that
wakes the hubs, a second writer 0-3 ms later, then a second of silence), with two server replicas whose
watchdogs are off (docs/20_EVENT_JOURNAL.md#notify-and-waking-the-stream-only-when-it-sleeps)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable

import asyncpg
import websockets

from journal_api.stream.wakefulness import LINGER_S

from .conftest import TOKEN, Running, StartServer
from .test_horizon_stress import (
    INSERT,
    _autocommit,
    _long,
    _multi_row,
    _repeatable_read,
    _rolled_back,
    _savepoint_rolled_back,
    _with_work,
)

ROUNDS = 16
SILENCE_S = 1.0  # a row committed and not delivered after this long is stranded

Pattern = Callable[[asyncpg.Connection, random.Random], Awaitable[list[int]]]
BURST: list[Pattern] = [_autocommit, _multi_row, _with_work, _savepoint_rolled_back, _rolled_back, _repeatable_read]
SECOND: list[Pattern] = [_autocommit, _multi_row, _repeatable_read, _savepoint_rolled_back]


class LiveClient:
    """A client that stays subscribed to one replica and records every event id as it arrives."""

    def __init__(self, server: Running) -> None:
        self.received: set[int] = set()
        self.order: list[int] = []
        self._server = server

    async def run(self, ready: asyncio.Event) -> None:
        async with websockets.connect(self._server.url, open_timeout=30, max_queue=None) as socket:
            await socket.send(json.dumps({"op": "subscribe", "token": TOKEN, "cursor": "0"}))
            ready.set()
            async for message in socket:
                frame = json.loads(message)
                if frame["op"] == "event":
                    self.order.append(int(frame["event"]["id"]))
                    self.received.add(self.order[-1])


async def _burst(conns: list[asyncpg.Connection], rng: random.Random, committed: list[int]) -> None:
    """Every writer runs patterns for about 0.3 s, one of them sometimes a transaction held for up to 1.5 s."""
    loop = asyncio.get_running_loop()
    until = loop.time() + 0.3

    async def write(conn: asyncpg.Connection) -> None:
        while loop.time() < until:  # half of them autocommit: dense enough that the hubs wake up for good
            pattern = _long if rng.random() < 0.02 else rng.choice([_autocommit] * len(BURST) + BURST)
            committed.extend(await pattern(conn, rng))

    await asyncio.gather(*(write(conn) for conn in conns))


async def _pair(first: asyncpg.Connection, second: asyncpg.Connection, rng: random.Random) -> list[int]:
    """One commit, then (half the time) another writer 0-3 ms later: either may meet a hub falling asleep."""
    ids = [await first.fetchval(INSERT)]
    if rng.random() < 0.5:
        await asyncio.sleep(rng.uniform(0, 0.003))
        ids += await rng.choice(SECOND)(second, rng)
    return ids


async def test_quiet_pairs_after_bursts_strand_nothing_on_two_sleeping_replicas(
    db_url: str, journal_server: StartServer
) -> None:
    """After each quiet pair and a second of silence, both replicas' clients have every committed event; at the
    end each has exactly the committed ids, in order, and the hubs did sleep."""
    rng = random.Random(20261130)
    committed: list[int] = []
    stranded: list[int] = []
    modes: list[str] = []  # each hub's, as each pair began
    conns = [await asyncpg.connect(db_url) for _ in range(6)]
    try:
        async with journal_server(check_interval_s=600) as one, journal_server(check_interval_s=600) as two:
            clients = [LiveClient(one), LiveClient(two)]
            ready = [asyncio.Event(), asyncio.Event()]
            tasks = [asyncio.create_task(client.run(event)) for client, event in zip(clients, ready, strict=True)]
            for event in ready:
                await event.wait()
            for _ in range(ROUNDS):
                await _burst(conns[:4], rng, committed)
                # Around the hubs' linger: sometimes they are asleep by then, sometimes falling asleep, sometimes not.
                await asyncio.sleep(rng.uniform(LINGER_S / 2, LINGER_S * 1.5))
                modes += [one.hub.wakefulness.mode, two.hub.wakefulness.mode]
                committed += await _pair(conns[4], conns[5], rng)
                await asyncio.sleep(SILENCE_S)
                stranded += [i for i in committed for c in clients if i not in c.received]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for conn in conns:
            await conn.close()
    assert stranded == []
    assert len(committed) > 300
    assert modes.count("asleep") >= 3, modes  # pairs met sleeping hubs
    assert len(modes) - modes.count("asleep") >= 3, modes  # and hubs awake or falling asleep
    for client in clients:
        assert client.order == sorted(committed)
