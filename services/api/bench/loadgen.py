"""The benchmark's load generator: raw WebSocket clients, spread over worker processes.

A client speaks just enough RFC 6455 to connect, send one text message (the subscribe) and read. It stamps the
time when bytes arrive (raw receive, before any parsing), walks frame headers only, and reads an event's id from
the frame's first bytes. Parsing and bookkeeping cost well under a microsecond a frame, so the server, not the
generator, is what a run measures; the generator's own CPU time is reported next to the server's.

Each worker process runs its share of the clients on its own event loop and reports back through a pipe:

    workers = Workers(target, clients=1000, processes=2)   # connects, waits until every client is live
    ...                                                   # make events
    results = workers.wait_for(last_id, timeout_s=60)     # every client has it (or the time is up); closes
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import uvloop

__all__ = ["ClientResult", "Target", "Workers", "process_cpu_s"]

_CONNECT_BATCH = 100  # connections opened at once: stays well inside the server's listen backlog


@dataclass(frozen=True)
class Target:
    """Where clients connect and how they recognise frames."""

    host: str
    port: int
    hello: bytes | None  # the first message sent after the handshake (the subscribe), or nothing
    event_prefix: bytes  # an event frame's payload starts with this, and its id follows ...
    id_end: bytes  # ... up to this byte
    live_prefix: bytes | None  # a client counts as connected once a frame starting with this arrived
    path: str = "/ws"


@dataclass
class ClientResult:
    """What one client saw: event ids and their raw receive times (``time.perf_counter``), other frames, close."""

    ids: array[int]
    times: array[float]
    other_frames: int
    close_code: int | None


def _frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: clients must mask; an all-zero mask leaves the payload as it is."""
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, 0x80 | size])
    elif size < 65_536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


class _Client(asyncio.Protocol):
    def __init__(self, target: Target, live: asyncio.Future[None]) -> None:
        self._target = target
        self._live = live
        self._buffer = bytearray()
        self._upgraded = False
        self._transport: asyncio.Transport | None = None
        self.result = ClientResult(array("q"), array("d"), 0, None)
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport
        key = "dGhlIHNhbXBsZSBub25jZQ=="  # the key does not need to be random for a benchmark
        transport.write(
            f"GET {self._target.path} HTTP/1.1\r\nHost: {self._target.host}:{self._target.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._live.done():
            self._live.set_exception(ConnectionError(f"closed before going live (close {self.result.close_code})"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buffer = self._buffer
        buffer += data
        if not self._upgraded and not self._upgrade():
            return
        target, result = self._target, self.result
        prefix, id_end, start_of_id = target.event_prefix, target.id_end, len(target.event_prefix)
        position, size = 0, len(buffer)
        while size - position >= 2:
            opcode, length = buffer[position] & 0x0F, buffer[position + 1] & 0x7F
            start = position + 2
            if length == 126:
                start += 2
                length = int.from_bytes(buffer[position + 2 : start], "big")
            elif length == 127:
                start += 8
                length = int.from_bytes(buffer[position + 2 : start], "big")
            end = start + length
            if end > size:
                break
            if opcode == 1:
                if buffer.startswith(prefix, start):
                    id_start = start + start_of_id
                    result.ids.append(int(buffer[id_start : buffer.index(id_end, id_start)]))
                    result.times.append(now)
                else:
                    result.other_frames += 1
                    if not self._live.done() and buffer.startswith(target.live_prefix or b"", start):
                        self._live.set_result(None)
            elif opcode == 9:  # ping: answer, or the server drops us
                self._write(_frame(0xA, bytes(buffer[start:end])))
            elif opcode == 8:
                result.close_code = int.from_bytes(buffer[start : start + 2], "big") if length >= 2 else 1005
            position = end
        del buffer[:position]

    def _upgrade(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        if not self._buffer.startswith(b"HTTP/1.1 101"):
            status = bytes(self._buffer[: self._buffer.find(b"\r\n")]).decode(errors="replace")
            self._live.set_exception(ConnectionError(f"the server refused the upgrade: {status}"))
            self.close()
            return False
        del self._buffer[: end + 4]
        self._upgraded = True
        if self._target.hello is not None:
            self._write(_frame(0x1, self._target.hello))
        if self._target.live_prefix is None:
            self._live.set_result(None)
        return True

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)


async def _connect(target: Target, count: int) -> list[_Client]:
    loop = asyncio.get_running_loop()
    clients: list[_Client] = []

    async def one() -> None:
        live: asyncio.Future[None] = loop.create_future()
        _, client = await loop.create_connection(lambda: _Client(target, live), target.host, target.port)
        clients.append(client)
        await asyncio.wait_for(live, 120)

    for first in range(0, count, _CONNECT_BATCH):
        await asyncio.gather(*(one() for _ in range(first, min(count, first + _CONNECT_BATCH))))
    return clients


async def _serve(pipe: Connection, target: Target, count: int) -> None:
    loop = asyncio.get_running_loop()
    try:
        clients = await _connect(target, count)
    except Exception as exc:  # reported to the parent, which fails the run with it
        pipe.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    pipe.send(("live", time.process_time()))
    command, last_id, timeout_s = await loop.run_in_executor(None, pipe.recv)
    assert command == "wait_for"
    deadline = loop.time() + timeout_s
    while loop.time() < deadline and not all(c.result.ids and c.result.ids[-1] >= last_id for c in clients):  # noqa: ASYNC110 - polled
        await asyncio.sleep(0.01)
    for client in clients:
        client.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), 10)
    pipe.send(("done", (time.process_time(), [c.result for c in clients])))


def _worker(pipe: Connection, target: Target, count: int) -> None:
    uvloop.run(_serve(pipe, target, count))  # the generator's own overhead per read is what uvloop cuts


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Workers:
    """``clients`` raw clients over ``processes`` worker processes, all connected and live on return."""

    target: Target
    clients: int
    processes: int = 2
    _pipes: list[Connection] = field(default_factory=list)
    _procs: list[Any] = field(default_factory=list)
    cpu_s: float = 0.0  # the workers' CPU time from all clients being live until they closed

    def __post_init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        processes = max(1, min(self.processes, self.clients))
        shares = [self.clients // processes + (n < self.clients % processes) for n in range(processes)]
        for share in shares:
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, self.target, share), daemon=True)
            process.start()
            self._pipes.append(parent)
            self._procs.append(process)
        for pipe in self._pipes:
            if not pipe.poll(300):
                raise RuntimeError("a load generator worker did not connect its clients in 300 s")
            status, detail = pipe.recv()
            if status != "live":
                self.stop()
                raise RuntimeError(f"a load generator worker failed: {detail}")
            self.cpu_s -= detail

    def wait_for(self, last_id: int, timeout_s: float) -> list[ClientResult]:
        """Wait until every client has received ``last_id`` (or ``timeout_s`` passed), close, and report."""
        for pipe in self._pipes:
            pipe.send(("wait_for", last_id, timeout_s))
        results: list[ClientResult] = []
        for pipe in self._pipes:
            status, (cpu_s, clients) = pipe.recv()
            assert status == "done"
            self.cpu_s += cpu_s
            results.extend(clients)
        self.stop()
        return results

    def stop(self) -> None:
        for process in self._procs:
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
