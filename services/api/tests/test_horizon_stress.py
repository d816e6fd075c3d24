"""Every writing pattern at once, two server replicas, clients that drop and resume on either: each client gets
every committed event exactly once, in id order (docs/20_EVENT_JOURNAL.md#the-delivery-horizon)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable

import asyncpg
import websockets

from journal_api.journal.repository import query_events

from .conftest import TOKEN, Running, StartServer

INSERT = "INSERT INTO events (type) VALUES ('order.submitted') RETURNING id"
INSERT_MANY = "INSERT INTO events (type) SELECT 'order.submitted' FROM generate_series(1, $1) RETURNING id"
WRITING_S = 6.0


class Writers:
    """Writers that use every pattern the journal allows, recording the ids that committed."""

    def __init__(self, db_url: str, seed: int) -> None:
        self.committed: list[int] = []
        self.prepared = 0
        self._db_url = db_url
        self._rng = random.Random(seed)

    async def run(self, writers: int) -> None:
        conns = [await asyncpg.connect(self._db_url) for _ in range(2 * writers)]
        deadline = asyncio.get_running_loop().time() + WRITING_S
        try:
            await asyncio.gather(*(self._write(conns[n], conns[writers + n], deadline) for n in range(writers)))
        finally:
            for conn in conns:
                await conn.close(timeout=5)

    async def _write(self, conn: asyncpg.Connection, finisher: asyncpg.Connection, deadline: float) -> None:
        """Pattern after pattern until ``deadline``, each finished (a prepared transaction left behind would hold
        the horizon for good)."""
        rng = self._rng
        patterns: list[Callable[[asyncpg.Connection, random.Random], Awaitable[list[int]]]] = [
            _autocommit,
            _multi_row,
            _with_work,
            _savepoint_rolled_back,
            _rolled_back,
            _repeatable_read,
            _quiet_pair,
        ]
        while asyncio.get_running_loop().time() < deadline:
            if rng.random() < 0.03:
                ids = await _long(conn, rng)
            elif rng.random() < 0.05:
                ids = await self._two_phase(conn, finisher, rng)
            else:
                ids = await rng.choice(patterns)(conn, rng)
            self.committed.extend(ids)

    async def _two_phase(self, conn: asyncpg.Connection, finisher: asyncpg.Connection, rng: random.Random) -> list[int]:
        """A declared prepared transaction, finished from another connection after a while, sometimes rolled
        back."""
        self.prepared += 1
        gid = f"stress-{id(self)}-{self.prepared}"
        await conn.execute("BEGIN; SET LOCAL journal.two_phase = on")
        ids = [row["id"] for row in await conn.fetch(INSERT_MANY, rng.randint(1, 3))]
        await conn.execute(f"PREPARE TRANSACTION '{gid}'")
        await asyncio.sleep(rng.uniform(0, 0.05))
        if rng.random() < 0.2:
            await finisher.execute(f"ROLLBACK PREPARED '{gid}'")
            return []
        await finisher.execute(f"COMMIT PREPARED '{gid}'")
        return ids


async def _autocommit(conn: asyncpg.Connection, rng: random.Random) -> list[int]:
    return [await conn.fetchval(INSERT)]


async def _multi_row(conn: asyncpg.Connection, rng: random.Random) -> list[int]:
    return [row["id"] for row in await conn.fetch(INSERT_MANY, rng.randint(2, 5))]


async def _with_work(conn: asyncpg.Connection, rng: random.Random) -> list[int]:
    async with conn.transaction():
        ids = [await conn.fetchval(INSERT) for _ in range(rng.randint(1, 3))]
        await asyncio.sleep(rng.uniform(0, 0.005))  # the engine's other work, after its events
    return ids


async def _savepoint_rolled_back(conn: asyncpg.Connection, rng: random.Random) -> list[int]:
    async with conn.transaction():
        kept = [await conn.fetchval(INSERT)] if rng.random() < 0.5 else []
        savepoint = conn.transaction()
        await savepoint.start()
        await conn.fetchval(INSERT)
        await asyncio.sleep(rng.uniform(0, 0.003))
        await savepoint.rollback()
        kept.append(await conn.fetchval(INSERT))
    return kept


async def _rolled_back(conn: asyncpg.Connection, rng: random.Random) -> list[int]:
    transaction = conn.transaction()
    await transaction.start()
    await conn.fetch(INSERT_MANY, rng.randint(1, 3))
    await asyncio.sleep(rng.uniform(0, 0.005))
    await transaction.rollback()
    return []


async def _repeatable_read(conn: asyncpg.Connection, rng: random.Random) -> list[int]:
    async with conn.transaction(isolation="repeatable_read"):
        await conn.fetchval("SELECT count(*) FROM journal_meta")
        await asyncio.sleep(rng.uniform(0, 0.003))
        return [await conn.fetchval(INSERT)]


async def _quiet_pair(conn: asyncpg.Connection, rng: random.Random) -> list[int]:
    """A commit, then silence from this writer: with the others' pairs, quiet phases between bursts."""
    ids = [await conn.fetchval(INSERT)]
    await asyncio.sleep(rng.uniform(0, 0.003))
    ids.append(await conn.fetchval(INSERT))
    await asyncio.sleep(rng.uniform(0.05, 0.3))
    return ids


async def _long(conn: asyncpg.Connection, rng: random.Random) -> list[int]:
    async with conn.transaction():
        ids = [await conn.fetchval(INSERT)]
        await asyncio.sleep(rng.uniform(0.5, 1.5))  # holds delivery of every later id back meanwhile
        ids.append(await conn.fetchval(INSERT))
    return ids


class Reader:
    """A client that subscribes to either replica, drops its connection now and then, and resumes from its last
    cursor; it records every event id it receives."""

    def __init__(self, servers: list[Running], seed: int) -> None:
        self.received: list[int] = []
        self.cursor = "0"
        self._servers = servers
        self._rng = random.Random(seed)

    async def run_until(self, done: Callable[[], bool]) -> None:
        while not done():
            url = self._rng.choice(self._servers).url
            async with websockets.connect(url, open_timeout=30, max_queue=None) as socket:  # see test_ws_recovery
                await socket.send(json.dumps({"op": "subscribe", "token": TOKEN, "cursor": self.cursor}))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._rng.uniform(0.2, 1.5)):  # then drop and resume
                        while not done():
                            frame = json.loads(await socket.recv())
                            if frame["op"] == "event":
                                self.received.append(int(frame["event"]["id"]))
                            if "cursor" in frame:
                                self.cursor = frame["cursor"]


async def test_every_pattern_with_two_replicas_and_resuming_clients_delivers_each_event_once(
    db_url: str, journal_server: StartServer
) -> None:
    """Autocommit, multi-row, work after the insert, savepoints, rollbacks, REPEATABLE READ, quiet pairs, 1 s
    transactions and prepared transactions, all at once: four resuming clients on two replicas and a paging
    reader each get exactly the committed ids, in order."""
    writers = Writers(db_url, seed=20261130)
    async with journal_server() as one, journal_server() as two:
        readers = [Reader([one, two], seed) for seed in range(4)]
        writing = asyncio.create_task(writers.run(writers=6))
        target: list[int] = []

        def done() -> bool:
            return writing.done() and bool(target) and all(r.received[-1:] == target[-1:] for r in readers)

        reading = [asyncio.create_task(reader.run_until(done)) for reader in readers]
        await writing
        target.extend(sorted(writers.committed))
        async with asyncio.timeout(120):
            await asyncio.gather(*reading)
    pager = await asyncpg.connect(db_url)
    try:
        paged: list[int] = []
        cursor = 0
        while True:
            page = await query_events(pager, limit=97, cursor=cursor)
            paged += [event.id for event in page.events]
            if page.cursor == cursor:
                break
            cursor = page.cursor
    finally:
        await pager.close()
    assert len(target) > 500
    assert writers.prepared > 0
    assert paged == target
    for reader in readers:
        assert reader.received == target
