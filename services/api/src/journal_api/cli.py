"""The ``journal`` command: ``migrate``, ``serve`` and ``dev`` (docs/20_EVENT_JOURNAL.md#running-it)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import uvicorn

from journal_api.app import create_app
from journal_api.embedded import EmbeddedPostgres
from journal_api.migrations import MigrationError, apply_migrations, load_migrations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``journal`` command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "migrate":
            _migrate(_database_url(), args.dir)
        elif args.command == "serve":
            _serve(_database_url(), args.host, args.port)
        else:
            _dev(args.host, args.port, args.data, args.dir)
    except (MigrationError, _UsageError) as exc:
        print(f"journal {args.command}: {exc}", file=sys.stderr)
        return 2
    return 0


class _UsageError(Exception):
    """The command cannot run as called; the message says what to change."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="journal", description="The trading engine's event journal.")
    commands = parser.add_subparsers(dest="command", required=True)
    migrations = Path(os.environ.get("JOURNAL_MIGRATIONS_DIR", "migrations"))

    migrate = commands.add_parser("migrate", help="apply the SQL migrations to DATABASE_URL")
    migrate.add_argument("--dir", type=Path, default=migrations, help="folder of NNNN_name.sql files")

    serve = commands.add_parser("serve", help="serve the app against DATABASE_URL")
    dev = commands.add_parser("dev", help="embedded Postgres (unless DATABASE_URL is set), migrate, serve")
    for command in (serve, dev):
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=8000)
    dev.add_argument("--data", type=Path, default=Path(".data/postgres"), help="embedded Postgres data folder")
    dev.add_argument("--dir", type=Path, default=migrations, help="folder of NNNN_name.sql files")
    return parser


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise _UsageError(
            "DATABASE_URL is not set: point it at a Postgres 16 database, or use `make run`, "
            "which starts an embedded one"
        )
    return url


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
        print(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        print(f"journal is up to date ({len(migrations)} migrations)")


def _serve(dsn: str, host: str, port: int) -> None:
    uvicorn.run(create_app(dsn), host=host, port=port)


def _dev(host: str, port: int, data: Path, directory: Path) -> None:
    embedded = None
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        embedded = EmbeddedPostgres(data)
        dsn = embedded.dsn
        print(f"embedded Postgres running, data in {data} (DATABASE_URL={dsn})")
    try:
        _migrate(dsn, directory)
        print(f"serving on http://{host}:{port} (Ctrl-C to stop)")
        _serve(dsn, host, port)
    finally:
        if embedded is not None:
            embedded.stop()
