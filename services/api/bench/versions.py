"""Earlier versions of this project, run in the same bench run as the working tree, for "before/after" rows.

A revision is checked out with ``git worktree add --detach`` into a temporary folder (removed at the end); its
journal is made by ITS OWN ``journal migrate`` from ITS OWN ``migrations/`` on a fresh database, and its stream
server is ITS OWN ``journal serve``, run by this venv's python with ``PYTHONPATH=<checkout>/services/api/src`` (which
comes before the editable install of the working tree on ``sys.path``). ``current`` is the working tree itself.

    with checked_out(["b5e30e2", "812f5ae"]) as versions:  # {"b5e30e2": Version, "812f5ae": Version, "current": ...}
        dsn = await create_journal(admin, server_url, versions["b5e30e2"])
        server = serve(versions["b5e30e2"], dsn, work, token)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from loadgen import Target, process_cpu_s

__all__ = ["CURRENT", "REVISIONS", "Running", "Version", "checked_out", "create_journal", "serve", "target"]

ROOT = Path(__file__).resolve().parents[3]

# The revisions the before/after rows compare with the working tree: the global exclusive id lock with per-row
# NOTIFY (before issue 11), and issue 11's floor-lock horizon with per-row NOTIFY.
REVISIONS = {"b5e30e2": "before issue 11: global id lock", "812f5ae": "issue 11: horizon, per-row NOTIFY"}

# Runs a revision's command line with that revision's code (older revisions have no ``python -m journal_api.cli``).
_CLI = "import sys; from journal_api.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass(frozen=True)
class Version:
    """One version of the project: a label for the report and the folder its code and migrations are in."""

    label: str
    root: Path

    @property
    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.root / "services" / "api" / "src")}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-c", _CLI, *args]


CURRENT = Version("current", ROOT)


@contextlib.contextmanager
def checked_out(revisions: list[str]) -> Iterator[dict[str, Version]]:
    """Each revision in a detached worktree of its own, plus ``current``; a revision this clone lacks (a shallow
    clone) is left out with a note, and its rows say so."""
    folder = Path(tempfile.mkdtemp(prefix="journal-versions-"))
    versions: dict[str, Version] = {}
    try:
        for revision in revisions:
            path = folder / revision
            done = subprocess.run(  # noqa: S603 - fixed arguments
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), revision],  # noqa: S607
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                print(f"  revision {revision} not available ({done.stderr.strip()}): its rows are left out", flush=True)
                continue
            versions[revision] = Version(revision, path)
        versions["current"] = CURRENT
        yield versions
    finally:
        for version in versions.values():
            if version is not CURRENT:
                subprocess.run(  # noqa: S603 - fixed arguments
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(version.root)],  # noqa: S607
                    capture_output=True,
                    check=False,
                )
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True, check=False)  # noqa: S603, S607


def _database_dsn(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def create_journal(admin: asyncpg.Connection, server_url: str, version: Version, names: list[str]) -> str:
    """A fresh database with ``version``'s migrations applied by ``version``'s own ``journal migrate``; its name is
    appended to ``names`` (the caller drops them); returns its DSN."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    await admin.execute(f"CREATE DATABASE {name}")
    names.append(name)
    dsn = _database_dsn(server_url, name)
    migrate = await asyncio.create_subprocess_exec(
        *version.command("migrate", "--dir", str(version.root / "migrations")),
        env={**os.environ, **version.env, "DATABASE_URL": dsn},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await migrate.communicate()
    if migrate.returncode:
        raise RuntimeError(f"journal migrate of {version.label} failed:\n{output.decode(errors='replace')}")
    return dsn


@dataclass
class Running:
    """A stream server of one version, its own process, its output in a file (never a pipe, which could fill)."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def cpu_s(self) -> float:
        return process_cpu_s(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def serve(version: Version, dsn: str, work: Path, token: str) -> Iterator[Running]:
    """``version``'s ``journal serve`` on a free port, stopped on exit."""
    log = work / f"serve-{version.label}-{uuid.uuid4().hex[:6]}.log"
    env = {**os.environ, **version.env, "DATABASE_URL": dsn, "JOURNAL_TOKENS": token}
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            version.command("serve", "--port", "0"), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    server = None
    while server is None and time.monotonic() < deadline and process.poll() is None:
        match = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if match:
            server = Running(process, int(match[1]))
        else:
            time.sleep(0.05)
    if server is None:
        process.kill()
        process.wait()
        raise RuntimeError(
            f"journal serve of {version.label} did not start:\n{log.read_text(errors='replace')[-3000:]}"
        )
    try:
        yield server
    finally:
        server.stop()


def target(port: int, token: str) -> Target:
    """A raw load-generator client subscribing live (the protocol is the same in every compared version)."""
    return Target(
        "127.0.0.1",
        port,
        hello=f'{{"op":"subscribe","token":"{token}"}}'.encode(),
        event_prefix=b'{"op":"event","cursor":"',
        id_end=b'"',
        live_prefix=b'{"op":"live"',
    )
