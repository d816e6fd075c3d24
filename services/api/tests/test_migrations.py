"""Migrations: applied in order, once, with checksums and a lock (docs/20_EVENT_JOURNAL.md#migrations)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import asyncpg
import pytest

from journal_api.journal.migrations import MigrationError, apply_migrations, load_migrations

from .conftest import SHIPPED


@pytest.fixture
def folder(tmp_path: Path, migrations_dir: Path) -> Path:
    """A copy of the repository's migrations, free to edit."""
    target = tmp_path / "migrations"
    shutil.copytree(migrations_dir, target)
    return target


async def applied_versions(conn: asyncpg.Connection) -> list[str]:
    return [row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]


async def test_fresh_database_gets_every_migration_in_order(empty_db_url: str, folder: Path) -> None:
    """A fresh database gets each file applied, in name order, and recorded with its checksum."""
    (folder / "0902_second.sql").write_text("CREATE TABLE second (x int);")
    (folder / "0903_third.sql").write_text("INSERT INTO second VALUES (3);")
    (folder / "README.txt").write_text("not a migration")
    conn = await asyncpg.connect(empty_db_url)
    try:
        applied = await apply_migrations(conn, load_migrations(folder))
        assert applied == [*SHIPPED, "0902_second.sql", "0903_third.sql"]
        assert await applied_versions(conn) == applied
        assert await conn.fetchval("SELECT x FROM second") == 3
        checksum = await conn.fetchval("SELECT checksum FROM schema_migrations WHERE version = '0902_second.sql'")
        assert checksum == hashlib.sha256(b"CREATE TABLE second (x int);").hexdigest()
    finally:
        await conn.close()


async def test_up_to_date_database_is_a_no_op(db_url: str, folder: Path) -> None:
    """Running again applies nothing and changes nothing."""
    conn = await asyncpg.connect(db_url)
    try:
        before = await conn.fetch("SELECT * FROM schema_migrations")
        assert await apply_migrations(conn, load_migrations(folder)) == []
        assert await conn.fetch("SELECT * FROM schema_migrations") == before
    finally:
        await conn.close()


async def test_new_file_is_applied_on_top(db_url: str, folder: Path) -> None:
    """Only files not yet applied run."""
    (folder / "0902_second.sql").write_text("CREATE TABLE second (x int);")
    conn = await asyncpg.connect(db_url)
    try:
        assert await apply_migrations(conn, load_migrations(folder)) == ["0902_second.sql"]
        assert await applied_versions(conn) == [*SHIPPED, "0902_second.sql"]
    finally:
        await conn.close()


async def test_two_migrators_at_once_apply_each_file_once(empty_db_url: str, folder: Path) -> None:
    """Concurrent runners serialise on the lock: one applies everything, the other finds nothing to do."""
    (folder / "0902_slow.sql").write_text("SELECT pg_sleep(0.2); CREATE TABLE slow (x int);")
    migrations = load_migrations(folder)
    conns = [await asyncpg.connect(empty_db_url) for _ in range(2)]
    try:
        results = await asyncio.gather(*(apply_migrations(conn, migrations) for conn in conns))
        assert sorted(results, key=len) == [[], [*SHIPPED, "0902_slow.sql"]]
        assert await applied_versions(conns[0]) == [*SHIPPED, "0902_slow.sql"]
        assert await conns[0].fetchval("SELECT count(*) FROM journal_meta") == 1
    finally:
        for conn in conns:
            await conn.close()


async def test_edited_file_is_refused(db_url: str, folder: Path) -> None:
    """A file changed after it was applied is refused with a message that says what to do."""
    path = folder / "0001_journal.sql"
    path.write_text(path.read_text() + "\n-- an innocent-looking edit\n")
    conn = await asyncpg.connect(db_url)
    try:
        with pytest.raises(MigrationError, match=r"^migration 0001_journal.sql was edited after it was applied") as e:
            await apply_migrations(conn, load_migrations(folder))
        assert str(e.value).endswith("restore it and put the change in a new migration")
    finally:
        await conn.close()


async def test_database_ahead_of_the_folder_is_refused(db_url: str, folder: Path) -> None:
    """A database with a migration the folder lacks is newer than the code: refused."""
    (folder / "0902_second.sql").write_text("CREATE TABLE second (x int);")
    conn = await asyncpg.connect(db_url)
    try:
        await apply_migrations(conn, load_migrations(folder))
        (folder / "0902_second.sql").unlink()
        with pytest.raises(MigrationError, match=r"not in the folder: 0902_second.sql; this code is older"):
            await apply_migrations(conn, load_migrations(folder))
    finally:
        await conn.close()


async def test_failing_file_rolls_back_entirely(db_url: str, folder: Path) -> None:
    """A file that fails leaves no trace: neither its half-done work nor its record; the lock is released."""
    (folder / "0902_broken.sql").write_text("CREATE TABLE half (x int); SELECT no_such_function();")
    conn = await asyncpg.connect(db_url)
    try:
        with pytest.raises(
            MigrationError,
            match=r"^0902_broken.sql failed and changed nothing: function no_such_function\(\) does not exist "
            r"\(hint: No function matches",
        ) as raised:
            await apply_migrations(conn, load_migrations(folder))
        assert isinstance(raised.value.__cause__, asyncpg.UndefinedFunctionError)
        assert await applied_versions(conn) == SHIPPED
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    finally:
        await conn.close()


@pytest.mark.parametrize("name", ["1_short.sql", "0002-dash.sql", "0902_Upper.sql", "second.sql", "0902_x.SQL"])
def test_badly_named_sql_file_is_refused(folder: Path, name: str) -> None:
    """Every .sql file must be NNNN_name.sql, so none is silently skipped or misordered."""
    (folder / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=rf"^{name} is not named NNNN_name.sql"):
        load_migrations(folder)


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    """A wrong folder says how to point at the right one."""
    with pytest.raises(MigrationError, match=r"no migrations folder at .*: run from the repository root"):
        load_migrations(tmp_path / "nowhere")


def test_two_files_with_one_number_are_refused(folder: Path) -> None:
    """Each number is used once, so the order never depends on the rest of the name."""
    (folder / "0902_a.sql").write_text("SELECT 1;")
    (folder / "0902_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"^0902_a.sql and 0902_b.sql share the number 0902; give each its own$"):
        load_migrations(folder)


async def test_file_numbered_below_an_applied_one_is_refused(db_url: str, folder: Path) -> None:
    """A file added below the newest applied one would run out of order: refused, nothing applied."""
    (folder / "0903_third.sql").write_text("CREATE TABLE third (x int);")
    conn = await asyncpg.connect(db_url)
    try:
        await apply_migrations(conn, load_migrations(folder))
        (folder / "0902_second.sql").write_text("CREATE TABLE second (x int);")
        with pytest.raises(MigrationError, match=r"^0902_second.sql would run after 0903_third.sql, which is already"):
            await apply_migrations(conn, load_migrations(folder))
        assert await conn.fetchval("SELECT to_regclass('second')") is None
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("sql", "word"),
    [
        ("BEGIN; CREATE TABLE a (x int); COMMIT;", "BEGIN"),
        ("CREATE TABLE a (x int);\ncommit;", "COMMIT"),
        ("CREATE TABLE a (x int); rollback", "ROLLBACK"),
        ("start transaction; SELECT 1;", "START TRANSACTION"),
        ("SELECT 1; END;", "END"),
        ("SELECT 1; abort;", "ABORT"),
    ],
)
def test_transaction_control_in_a_file_is_refused(folder: Path, sql: str, word: str) -> None:
    """The runner gives each file a transaction; a file that commits by itself would break that."""
    (folder / "0902_tx.sql").write_text(sql)
    with pytest.raises(MigrationError, match=f"^0902_tx.sql contains {word}: each migration already runs"):
        load_migrations(folder)


def test_begin_and_end_in_bodies_strings_and_comments_are_fine(folder: Path) -> None:
    """Function bodies, string literals and comments may say BEGIN, COMMIT or END."""
    (folder / "0902_fn.sql").write_text(
        "-- COMMIT here is a comment\n/* BEGIN; */\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;\n"
        "SELECT 'COMMIT; END;' AS text;"
    )
    assert [m.version for m in load_migrations(folder)] == [*SHIPPED, "0902_fn.sql"]
