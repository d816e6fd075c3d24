"""Plain SQL migrations applied in order, with checksums and a lock (docs/20_EVENT_JOURNAL.md#migrations)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

__all__ = ["MIGRATION_LOCK", "Migration", "MigrationError", "apply_migrations", "load_migrations"]

MIGRATION_LOCK = 5355428995221422082  # 0x4A524E4C00000002, "JRNL" + 2: a session advisory lock used nowhere else

_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")
# Comments, quoted strings and dollar-quoted bodies (where plpgsql's BEGIN ... END lives) are blanked out before
# looking for transaction control, which would break "each file in its own transaction".
_NOT_SQL = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\$([A-Za-z_]*)\$.*?\$\1\$", re.DOTALL)
_TRANSACTION_CONTROL = re.compile(r"(?:^|;)\s*(BEGIN|COMMIT|ROLLBACK|ABORT|END|START\s+TRANSACTION)\b", re.IGNORECASE)

_CREATE_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version    text PRIMARY KEY,
        checksum   text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    )
"""


class MigrationError(Exception):
    """The migrations cannot be applied as they are; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL file: its version (the file name), its text and the SHA-256 of its bytes."""

    version: str
    sql: str
    checksum: str


def load_migrations(directory: Path) -> list[Migration]:
    """The migrations in ``directory``, in the order they apply."""
    if not directory.is_dir():
        raise MigrationError(
            f"no migrations folder at {directory}: run from the repository root, "
            "pass --dir or set JOURNAL_MIGRATIONS_DIR"
        )
    migrations: list[Migration] = []
    for path in sorted(p for p in directory.iterdir() if p.suffix.lower() == ".sql"):
        if not _NAME.match(path.name):
            raise MigrationError(
                f"{path.name} is not named NNNN_name.sql (four digits, lower-case name); rename it so it is "
                "applied in a known order"
            )
        if migrations and migrations[-1].version[:4] == path.name[:4]:
            raise MigrationError(
                f"{migrations[-1].version} and {path.name} share the number {path.name[:4]}; give each its own"
            )
        data = path.read_bytes()
        sql = data.decode()
        control = _TRANSACTION_CONTROL.search(_NOT_SQL.sub(" ", sql))
        if control:
            raise MigrationError(
                f"{path.name} contains {control[1].upper()}: each migration already runs in its own transaction, "
                "so remove the transaction control"
            )
        migrations.append(Migration(path.name, sql, hashlib.sha256(data).hexdigest()))
    return migrations


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; return their versions."""
    # A session lock for the whole run: a second migrator waits here, then finds everything applied.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(_CREATE_TABLE)
        applied = {
            row["version"]: row["checksum"]
            for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        _check_history(applied, migrations)
        done = []
        for migration in migrations:
            if migration.version in applied:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                        migration.version,
                        migration.checksum,
                    )
            except asyncpg.PostgresError as exc:
                hint = f" (hint: {exc.hint})" if exc.hint else ""
                raise MigrationError(f"{migration.version} failed and changed nothing: {exc.message}{hint}") from exc
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


def _check_history(applied: dict[str, str], migrations: list[Migration]) -> None:
    """Refuse a database whose history the files no longer tell: an edited file, or one that is missing."""
    known = {migration.version: migration.checksum for migration in migrations}
    missing = sorted(set(applied) - set(known))
    if missing:
        raise MigrationError(
            f"the database has migrations that are not in the folder: {', '.join(missing)}; "
            "this code is older than the database, so run a newer version"
        )
    newest = max(applied, default="")
    late = [m.version for m in migrations if m.version not in applied and m.version < newest]
    if late:
        raise MigrationError(
            f"{', '.join(late)} would run after {newest}, which is already applied; "
            "renumber it to come after the newest migration"
        )
    for version, checksum in applied.items():
        if known[version] != checksum:
            raise MigrationError(
                f"migration {version} was edited after it was applied "
                f"(applied {checksum[:12]}, now {known[version][:12]}); "
                "restore it and put the change in a new migration"
            )
