"""The ``journal`` command: ``migrate``, ``serve``, ``dev`` and ``tail`` (README.md, docs/30_WS_PROTOCOL.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any, get_args

import asyncpg
import uvicorn
from pydantic import ValidationError

from journal_api.client import ClientError
from journal_api.client.tail import Tail
from journal_api.journal.embedded import EmbeddedPostgres, Origin
from journal_api.journal.migrations import MigrationError, apply_migrations, load_migrations
from journal_api.journal.models import Channel, Level
from journal_api.stream.app import create_app, server_config, tune_gc
from journal_api.stream.settings import Settings, describe_errors

__all__ = ["main"]


class _UsageError(Exception):
    """The command cannot run as called; the message says what to change."""


def main(argv: list[str] | None = None) -> int:
    """Run the ``journal`` command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "migrate":
            _migrate(_database_url(), args.dir)
        elif args.command == "serve":
            _serve(_settings(), args.host, args.port)
        elif args.command == "dev":
            _dev(args)
        else:
            _tail(args)
    except (MigrationError, _UsageError, ClientError) as exc:
        print(f"journal {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass  # Ctrl-C is how `tail` is meant to end
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="journal", description="The trading engine's event journal.")
    commands = parser.add_subparsers(dest="command", required=True)
    migrations = Path(os.environ.get("JOURNAL_MIGRATIONS_DIR", "migrations"))

    migrate = commands.add_parser("migrate", help="apply the SQL migrations to DATABASE_URL")
    migrate.add_argument("--dir", type=Path, default=migrations, help="folder of NNNN_name.sql files")

    serve = commands.add_parser("serve", help="serve /healthz and /ws against DATABASE_URL")
    dev = commands.add_parser("dev", help="embedded Postgres (unless DATABASE_URL is set), migrate, demo, serve")
    for command in (serve, dev):
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=8000)
    dev.add_argument("--data", type=Path, default=Path(".data/postgres"), help="embedded Postgres data folder")
    dev.add_argument("--dir", type=Path, default=migrations, help="folder of NNNN_name.sql files")
    dev.add_argument("--demo-rate", type=float, default=5.0, help="demo events per second (0: no demo)")

    tail = commands.add_parser("tail", help="print the stream and resume after disconnects (token: JOURNAL_TOKEN)")
    tail.add_argument("--url", default="ws://127.0.0.1:8000/ws")
    tail.add_argument("--cursor", help='start after this event id ("0": everything; default: live only)')
    tail.add_argument("--cursor-file", type=Path, help="keep the cursor (and epoch) here and resume from it")
    tail.add_argument("--pretty", action="store_true", help="readable lines instead of JSON")
    tail.add_argument("--channel", action="append", choices=get_args(Channel), dest="channels")
    tail.add_argument("--type", action="append", dest="types", help="exact type or prefix.*")
    tail.add_argument("--symbol", action="append", dest="symbols")
    tail.add_argument("--trade-id", action="append", dest="trade_ids")
    tail.add_argument("--min-level", choices=get_args(Level))
    return parser


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise _UsageError(
            "DATABASE_URL is not set: point it at a Postgres 16 database, or use `make run`, "
            "which starts an embedded one"
        )
    return url


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _UsageError(describe_errors(exc)) from None


def _migrate(dsn: str, directory: Path) -> None:
    migrations = load_migrations(directory)

    async def run() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            return await apply_migrations(conn, migrations)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    if applied:
        print(f"applied {len(applied)} migration(s): {', '.join(applied)}", flush=True)
    else:
        print(f"journal is up to date ({len(migrations)} migrations)", flush=True)


def _serve(settings: Settings, host: str, port: int) -> None:
    tune_gc()
    config = server_config(create_app(settings), host=host, port=port, log_format=settings.log_format)
    uvicorn.Server(config).run()


# What `journal dev` says about the embedded Postgres it found or started, by EmbeddedPostgres.origin.
_ORIGIN_LINES: dict[Origin, str] = {
    "started": "embedded Postgres running, data in {data}",
    "adopted": "embedded Postgres left running in {data} by a process that is gone: this run will stop it",
    "shared": (
        "embedded Postgres already running in {data}, started by another process: using it, and leaving it running"
    ),
}


def _dev(args: argparse.Namespace) -> None:
    """Everything on this machine: embedded Postgres, migrations, the demo publisher and the server."""
    # A process manager or `timeout` stops it with SIGTERM and a closed terminal with SIGHUP, where Python's default
    # would end the process at once and leave Postgres and the publisher running. Both take Ctrl-C's path (uvicorn's
    # graceful shutdown, then the `finally` below). They often come twice, to the process group and again from
    # `uv run`, which forwards them: SIGHUP is made SIGTERM, which uvicorn shuts down on however often it comes
    # (a second Ctrl-C would cut its shutdown short).
    signal.signal(signal.SIGTERM, _as_ctrl_c)
    signal.signal(signal.SIGHUP, _as_sigterm)
    embedded = None
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        embedded = EmbeddedPostgres(args.data)
        dsn = embedded.dsn
        print(_ORIGIN_LINES[embedded.origin].format(data=args.data), flush=True)
    demo = None
    try:
        _migrate(dsn, args.dir)
        overrides: dict[str, Any] = {"database_url": dsn}
        if not os.environ.get("JOURNAL_TOKENS"):
            overrides["tokens"] = secrets.token_urlsafe(24)
            print(f"development token (made for this run): {overrides['tokens']}", flush=True)
        settings = _settings(**overrides)
        if args.demo_rate > 0:
            demo = _start_demo(dsn, args.demo_rate)
        print(f"serving ws://{args.host}:{args.port}/ws (Ctrl-C to stop)", flush=True)
        _serve(settings, args.host, args.port)
    finally:
        # A second signal must not cut the clean-up short and leave Postgres or the publisher running.
        for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(stop_signal, signal.SIG_IGN)
        if demo is not None:
            demo.send_signal(signal.SIGINT)  # as Ctrl-C would: it reports what it wrote and exits
            demo.wait()
        if embedded is not None:
            embedded.stop()


def _as_sigterm(signum: int, frame: FrameType | None) -> None:
    """Handle SIGHUP as SIGTERM."""
    signal.raise_signal(signal.SIGTERM)


def _as_ctrl_c(signum: int, frame: FrameType | None) -> None:
    """Handle SIGTERM as Ctrl-C. While uvicorn serves, SIGTERM is uvicorn's: it shuts down gracefully and raises
    SIGTERM again on its way out, which lands here; SIGINT then raises KeyboardInterrupt."""
    signal.raise_signal(signal.SIGINT)


def _start_demo(dsn: str, rate: float) -> subprocess.Popen[bytes]:
    """The engine's demo publisher, as its own process (the API never imports the engine)."""
    print(f"demo publisher writing {rate:g} events/s", flush=True)
    command = [str(Path(sys.executable).parent / "journal-engine"), "demo", "--rate", f"{rate:g}"]
    return subprocess.Popen(command, env={**os.environ, "DATABASE_URL": dsn})  # noqa: S603 - our own command


def _tail(args: argparse.Namespace) -> None:
    token = os.environ.get("JOURNAL_TOKEN")
    if not token:
        raise _UsageError("JOURNAL_TOKEN is not set: export the operator token the server was given")
    event_filter = {
        name: value
        for name in ("channels", "types", "symbols", "trade_ids", "min_level")
        if (value := getattr(args, name)) is not None
    }
    try:
        tail = Tail(
            url=args.url,
            token=token,
            cursor=args.cursor,
            filter=event_filter,
            pretty=args.pretty,
            cursor_file=args.cursor_file,
        )
    except ValueError as exc:  # the URL, checked before anything connects
        raise _UsageError(f"--url: {exc}") from None
    asyncio.run(tail.run())
