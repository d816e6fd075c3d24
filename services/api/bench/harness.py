"""The servers under test as processes (ours, the broadcaster baseline, the websockets floor), the targets the
load generator's clients connect to, and the databases a run creates."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from loadgen import Target, process_cpu_s

from journal_api.journal.migrations import apply_migrations, load_migrations

__all__ = [
    "BENCH",
    "ROOT",
    "TOKEN",
    "Server",
    "baseline",
    "create_database",
    "database_dsn",
    "floor_target",
    "ours",
    "running",
    "start",
    "start_baseline",
    "start_floor",
    "start_ours",
]

ROOT = Path(__file__).resolve().parents[3]
BENCH = Path(__file__).resolve().parent
TOKEN = "bench-token-" + uuid.uuid4().hex


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
