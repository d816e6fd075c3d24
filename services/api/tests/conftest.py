"""Helpers for the API's tests: the real app on a real uvicorn server, and real CLI processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from journal_api.journal.migrations import load_migrations
from journal_api.stream.app import create_app, server_config
from journal_api.stream.hub import Hub
from journal_api.stream.logs import FIELDS
from journal_api.stream.settings import Settings

__all__ = [
    "TOKEN",
    "CliProcess",
    "Client",
    "Connect",
    "Journal",
    "MakeSettings",
    "Running",
    "Serve",
    "StartServer",
    "session_closes",
    "stalled_client",
    "wait_for_close_log",
    "write",
]


@asynccontextmanager
async def _serve(app: Starlette, port: int = 0, log_level: str = "warning") -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (an ephemeral port unless given) for the duration; yield its base URL."""
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, log_level=log_level))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


class CliProcess:
    """A real CLI process whose combined output is read line by line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []

    def wait_for_line(self, pattern: str, timeout_s: float = 60) -> re.Match[str]:
        """Read output until a line matches ``pattern``; fail if the process ends or time runs out first."""
        deadline = time.monotonic() + timeout_s
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"process ended before {pattern!r}; output:\n{''.join(self.lines)}")
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matched {pattern!r} in {timeout_s} s; output:\n{''.join(self.lines)}")

    def seen_or_wait_for(self, pattern: str, timeout_s: float = 60) -> re.Match[str]:
        """As :meth:`wait_for_line`, but a line already read counts too: for lines of two processes sharing the
        output (a command and its child), which come in either order."""
        for line in self.lines:
            if match := re.search(pattern, line):
                return match
        return self.wait_for_line(pattern, timeout_s)

    def interrupt(self, timeout_s: float = 60, signum: signal.Signals = signal.SIGINT, *, group: bool = False) -> int:
        """Send Ctrl-C (or ``signum``; to its whole process group with ``group``, as a terminal or `timeout` do),
        wait for the exit, keep the rest of the output; return the exit status."""
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        rest, _ = self.process.communicate(timeout=timeout_s)
        self.lines.append(rest)
        return self.process.returncode


@contextmanager
def _run_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> Iterator[CliProcess]:
    """Run the installed ``journal`` command with ``args``; kill it, and any child it left, when the test ends."""
    command = [str(Path(sys.executable).parent / "journal"), *args]
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so a failed test can kill its children too
    )
    try:
        yield CliProcess(process)
    finally:
        # Even after the command ended: a child left running (the demo publisher of a `journal dev` that died)
        # would keep the output pipe open, and the test would hang on it instead of failing.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.stdout is not None and not process.stdout.closed:
            process.communicate()


Serve = Callable[..., AbstractAsyncContextManager[str]]
MakeSettings = Callable[..., Settings]
TOKEN = "operator-token-0123456789"
SHIPPED = [migration.version for migration in load_migrations(Path(__file__).parents[3] / "migrations")]
"""The repository's migrations, in the order they apply."""
Journal = Callable[..., AbstractContextManager[CliProcess]]


@pytest.fixture
def serve() -> Serve:
    """``async with serve(app) as base_url``: the app on a real uvicorn server, on an ephemeral port."""
    return _serve


@pytest.fixture
def journal() -> Journal:
    """``with journal(*args, env=...) as cli``: the installed ``journal`` command in a real process."""
    return _run_cli


@pytest.fixture
def make_settings(db_url: str) -> MakeSettings:
    """Settings for this test's journal with one token (TOKEN); keyword arguments override any field."""

    def make(**overrides: object) -> Settings:
        fields: dict[str, object] = {"database_url": db_url, "tokens": TOKEN} | overrides
        return Settings(**fields)  # type: ignore[arg-type]

    return make


@dataclass
class Running:
    """A journal server running for a test."""

    url: str  # the /ws URL
    base: str  # the http:// base URL
    app: Starlette

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.journal.hub
        return hub


StartServer = Callable[..., AbstractAsyncContextManager[Running]]


@pytest.fixture
def journal_server(make_settings: MakeSettings, serve: Serve) -> StartServer:
    """``async with journal_server(**settings) as server``: the real app on a real uvicorn server."""

    @asynccontextmanager
    async def run(port: int = 0, log_level: str = "warning", **overrides: object) -> AsyncIterator[Running]:
        app = create_app(make_settings(**overrides))
        async with serve(app, port, log_level) as base:
            yield Running(url=f"ws{base.removeprefix('http')}/ws", base=base, app=app)

    return run


class Client:
    """A real websockets client speaking journal.v1, with exact helpers for tests."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    async def send(self, message: object) -> None:
        await self.socket.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def subscribe(self, **fields: object) -> dict[str, Any]:
        """Send a subscribe with ``token`` TOKEN unless given (None leaves it out); return the ready frame."""
        message: dict[str, object] = {"op": "subscribe", "token": TOKEN} | fields
        await self.send({key: value for key, value in message.items() if value is not None or key == "cursor"})
        ready = await self.frame()
        assert ready["op"] == "ready", ready
        return ready

    async def frame(self, timeout_s: float = 30) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.socket.recv(), timeout_s))
        return frame

    async def events_through(self, last_id: int, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Frames up to and including the event with ``last_id``; the events among them."""
        events: list[dict[str, Any]] = []
        while not events or int(events[-1]["id"]) < last_id:
            frame = await self.frame(timeout_s)
            if frame["op"] == "event":
                events.append(frame["event"])
        return events

    async def closed(self, timeout_s: float = 30) -> tuple[int | None, list[dict[str, Any]]]:
        """Read until the server closes; the close code and every frame received before it."""
        frames: list[dict[str, Any]] = []
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(timeout_s):  # for the whole wait: heartbeats must not keep it going
                while True:
                    frames.append(await self.frame(timeout_s))
        return self.socket.close_code, frames


@asynccontextmanager
async def _connect(url: str, **options: Any) -> AsyncIterator[Client]:
    async with websockets.connect(url, open_timeout=30, **options) as socket:
        yield Client(socket)


Connect = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def connect() -> Connect:
    """``async with connect(url, **websockets options) as client``."""
    return _connect


async def write(
    conn: asyncpg.Connection,
    count: int = 1,
    *,
    type: str = "order.submitted",
    level: str = "info",
    symbol: str | None = None,
    trade_id: str | None = None,
    payload: str = '{"side": "buy"}',
) -> list[int]:
    """Insert ``count`` events with plain SQL in one transaction, as the engine does; return their ids."""
    rows = await conn.fetch(
        "INSERT INTO events (type, level, symbol, trade_id, payload) "
        "SELECT $1, $2, $3, $4, $5::jsonb FROM generate_series(1, $6) RETURNING id",
        type,
        level,
        symbol,
        trade_id,
        payload,
        count,
    )
    return [row["id"] for row in rows]


async def write_without_notify(conn: asyncpg.Connection, count: int = 1) -> list[int]:
    """Insert ``count`` events in a transaction that sends no NOTIFY (declared two-phase, then simply committed):
    a wake-up lost on the way, as far as a sleeping hub can tell."""
    async with conn.transaction():
        await conn.execute("SET LOCAL journal.two_phase = on")
        return await write(conn, count)


async def until_asleep(hub: Hub) -> None:
    """Until the hub sleeps (60 s at most): from then on it reads only on a NOTIFY or its watchdog."""
    async with asyncio.timeout(60):
        while hub.wakefulness.mode != "asleep":  # noqa: ASYNC110 - the hub changes it from its own task
            await asyncio.sleep(0.005)


@asynccontextmanager
async def stalled_client(conn: asyncpg.Connection, url: str) -> AsyncIterator[Client]:
    """A client subscribed live that stops reading, with ~20 MB written for it: more than the loopback socket
    buffers hold, so the server's sends block as with a stalled consumer. (max_queue=1: the client library stops
    reading its socket while a frame waits.)"""
    payload = json.dumps({"blob": "x" * 4000})
    async with websockets.connect(url, max_queue=1, open_timeout=30) as socket:
        client = Client(socket)
        await client.subscribe(cursor=None)
        for _ in range(40):
            await write(conn, 120, payload=payload)
        yield client


def session_closes(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    """The fields of every ``session closed`` line among ``records`` (docs/50_OPERATIONS.md#logs)."""
    return [getattr(r, FIELDS) for r in records if r.name == "journal_api.ws" and r.getMessage() == "session closed"]


async def wait_for_close_log(caplog: pytest.LogCaptureFixture, reason: str) -> dict[str, Any]:
    """Until a ``session closed`` line gives ``reason`` (60 s at most); its fields."""
    async with asyncio.timeout(60):
        while True:
            for fields in session_closes(caplog.records):
                if fields["reason"] == reason:
                    return fields
            await asyncio.sleep(0.01)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a server that must come back at the same address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
