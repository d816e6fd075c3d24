"""Shared fixtures: a real Postgres for the whole run, and a fresh, migrated database for each test.

Postgres is ``DATABASE_URL`` when set (the role needs CREATEDB), otherwise an embedded server from pgserver. The
journal is append-only, so tests cannot empty it: each test gets its own database, copied from a template that
was migrated once.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from journal_api.journal.embedded import EmbeddedPostgres
from journal_api.journal.migrations import apply_migrations, load_migrations

MIGRATIONS = Path(__file__).parent / "migrations"
PREPARED_TRANSACTIONS = 16  # max_prepared_transactions on the embedded test server


def database_url(server_url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``server_url``."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def _create_database(server_url: str, name: str, template: str | None = None) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        suffix = f" TEMPLATE {template}" if template else ""
        await conn.execute(f"CREATE DATABASE {name}{suffix}")
    finally:
        await conn.close()


async def _drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def _configure_test_server(server_url: str) -> None:
    """The test server's data is deleted after the run: skip fsync, which makes each CREATE DATABASE slow. Allow
    prepared transactions (the horizon's tests prepare some); that one takes effect at the restart that follows."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute("ALTER SYSTEM SET fsync = off")
        await conn.execute("ALTER SYSTEM SET full_page_writes = off")
        await conn.execute(f"ALTER SYSTEM SET max_prepared_transactions = {PREPARED_TRANSACTIONS}")
    finally:
        await conn.close()


@pytest.fixture
def migrations_dir() -> Path:
    """The repository's migrations folder."""
    return MIGRATIONS


def _postgres_folder() -> tempfile.TemporaryDirectory[str]:
    """A folder for an embedded server's data, outside pytest's own temporary folder.

    Run as root, the server runs as pgserver's system user, which must be able to reach its data folder whenever
    pg_ctl starts it. Every pytest run on the machine makes /tmp/pytest-of-<user> private again (its first tmp_path), so
    a server started later from a data folder in there (a restart, a `journal dev` under test) would be refused."""
    return tempfile.TemporaryDirectory(prefix="journal-postgres-")


@pytest.fixture
def postgres_data() -> Iterator[Path]:
    """A data folder (not yet made) for an embedded server of this test's own; deleted after the test."""
    with _postgres_folder() as folder:
        yield Path(folder) / "data"


@pytest.fixture(scope="session")
def embedded_postgres() -> Iterator[EmbeddedPostgres | None]:
    """The embedded server, or None when DATABASE_URL names an external one."""
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    with _postgres_folder() as folder:
        server = EmbeddedPostgres(Path(folder) / "data", on_stop="delete")
        try:
            asyncio.run(_configure_test_server(server.dsn))
            server.stop_server()
            server.start_server()
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def postgres_url(embedded_postgres: EmbeddedPostgres | None) -> str:
    """The URL of a database on a running Postgres 16 server, for the whole test run."""
    return embedded_postgres.dsn if embedded_postgres is not None else os.environ["DATABASE_URL"]


class PostgresOutage:
    """Takes the database away and brings it back: a real stop and start of the embedded server, or (with an
    external DATABASE_URL, which tests may not stop) refused connections plus every session terminated."""

    def __init__(self, embedded: EmbeddedPostgres | None, server_url: str, database: str) -> None:
        self._embedded = embedded
        self._server_url = server_url
        self._database = database

    async def begin(self, *, crash: bool = False) -> None:
        """Take the database away; ``crash``: as a crash would, which empties UNLOGGED tables (an external server
        is not crashed: its journal_hubs table is emptied instead)."""
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop_server, "immediate" if crash else "fast")
            return
        conn = await asyncpg.connect(self._server_url)
        try:
            await conn.execute(f"ALTER DATABASE {self._database} ALLOW_CONNECTIONS false")
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", self._database
            )
        finally:
            await conn.close()
        if crash:
            self._truncate_hubs = True

    _truncate_hubs = False

    async def end(self) -> None:
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.start_server)
            return
        conn = await asyncpg.connect(self._server_url)
        try:
            await conn.execute(f"ALTER DATABASE {self._database} ALLOW_CONNECTIONS true")
        finally:
            await conn.close()
        if self._truncate_hubs:
            conn = await asyncpg.connect(database_url(self._server_url, self._database))
            try:
                await conn.execute("TRUNCATE journal_hubs")
            finally:
                await conn.close()


@pytest.fixture
def postgres_outage(embedded_postgres: EmbeddedPostgres | None, postgres_url: str, db_url: str) -> PostgresOutage:
    """Stop and start Postgres under this test's journal."""
    return PostgresOutage(embedded_postgres, postgres_url, urlsplit(db_url).path.lstrip("/"))


@pytest.fixture(scope="session")
def template_name(postgres_url: str) -> Iterator[str]:
    """A database with every migration applied, to copy for each test."""
    name = f"journal_template_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        await _create_database(postgres_url, name)
        conn = await asyncpg.connect(database_url(postgres_url, name))
        try:
            await apply_migrations(conn, load_migrations(MIGRATIONS))
        finally:
            await conn.close()

    asyncio.run(create())
    yield name
    asyncio.run(_drop_database(postgres_url, name))


@pytest.fixture
async def db_url(postgres_url: str, template_name: str) -> AsyncIterator[str]:
    """The URL of a fresh, migrated, empty journal database for this test alone."""
    name = f"journal_test_{uuid.uuid4().hex[:12]}"
    await _create_database(postgres_url, name, template=template_name)
    yield database_url(postgres_url, name)
    await _drop_database(postgres_url, name)


@pytest.fixture
async def empty_db_url(postgres_url: str) -> AsyncIterator[str]:
    """The URL of a fresh database with no migration applied."""
    name = f"journal_empty_{uuid.uuid4().hex[:12]}"
    await _create_database(postgres_url, name)
    yield database_url(postgres_url, name)
    await _drop_database(postgres_url, name)


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to this test's journal database."""
    connection = await asyncpg.connect(db_url)
    yield connection
    await connection.close()
