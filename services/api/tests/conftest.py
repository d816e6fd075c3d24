"""Helpers for the API's tests: the real app on a real uvicorn server, and real CLI processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path

import pytest
import uvicorn
from starlette.types import ASGIApp

__all__ = ["CliProcess", "Journal", "Serve"]


@asynccontextmanager
async def _serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1, an ephemeral port, for the duration; yield its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
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

    def interrupt(self, timeout_s: float = 60) -> int:
        """Send Ctrl-C, wait for the exit, keep the rest of the output; return the exit status."""
        self.process.send_signal(signal.SIGINT)
        rest, _ = self.process.communicate(timeout=timeout_s)
        self.lines.append(rest)
        return self.process.returncode


@contextmanager
def _run_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> Iterator[CliProcess]:
    """Run the installed ``journal`` command with ``args``; kill it if the test leaves it running."""
    command = [str(Path(sys.executable).parent / "journal"), *args]
    process = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield CliProcess(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


Serve = Callable[[ASGIApp], AbstractAsyncContextManager[str]]
Journal = Callable[..., AbstractContextManager[CliProcess]]


@pytest.fixture
def serve() -> Serve:
    """``async with serve(app) as base_url``: the app on a real uvicorn server, on an ephemeral port."""
    return _serve


@pytest.fixture
def journal() -> Journal:
    """``with journal(*args, env=...) as cli``: the installed ``journal`` command in a real process."""
    return _run_cli
