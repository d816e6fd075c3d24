"""The ``journal`` command as users run it: migrate, serve, dev (docs/20_EVENT_JOURNAL.md#running-it)."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from journal_api.cli import main

from .conftest import Journal


def test_migrate_applies_then_reports_up_to_date(
    empty_db_url: str, migrations_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`journal migrate` applies what is missing, then says the journal is up to date."""
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    assert main(["migrate", "--dir", str(migrations_dir)]) == 0
    assert capsys.readouterr().out == "applied 1 migration(s): 0001_journal.sql\n"
    assert main(["migrate", "--dir", str(migrations_dir)]) == 0
    assert capsys.readouterr().out == "journal is up to date (1 migrations)\n"


def test_migrate_finds_the_folder_from_the_environment(
    empty_db_url: str, migrations_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """JOURNAL_MIGRATIONS_DIR names the folder when --dir is not given."""
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    monkeypatch.setenv("JOURNAL_MIGRATIONS_DIR", str(migrations_dir))
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out == "applied 1 migration(s): 0001_journal.sql\n"


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_commands_need_database_url(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without DATABASE_URL the command stops with status 2 and says what to set."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main([command]) == 2
    assert capsys.readouterr().err == (
        f"journal {command}: DATABASE_URL is not set: point it at a Postgres 16 database, "
        "or use `make run`, which starts an embedded one\n"
    )


def test_migrate_reports_a_refused_migration(
    db_url: str,
    migrations_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An edited migration stops `journal migrate` with status 2 and the reason."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir, folder)
    (folder / "0001_journal.sql").write_text("-- edited\n")
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["migrate", "--dir", str(folder)]) == 2
    assert capsys.readouterr().err.startswith("journal migrate: migration 0001_journal.sql was edited after it was")


def test_serve_answers_health_and_stops_on_ctrl_c(db_url: str, journal: Journal) -> None:
    """`journal serve` serves /healthz on the port it was given and exits cleanly on Ctrl-C."""
    with journal("serve", "--port", "0", env={"DATABASE_URL": db_url}) as cli:
        base = cli.wait_for_line(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")[1]
        response = httpx.get(f"{base}/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        assert cli.interrupt() == 0


@pytest.mark.parametrize(
    ("database", "reason"),
    [
        ("/no_such_database_here", 'InvalidCatalogNameError: database "no_such_database_here" does not exist'),
        ("/x?host=/nonexistent/socket/dir", "FileNotFoundError: [Errno 2] No such file or directory"),
    ],
)
def test_serve_refuses_to_start_without_its_database(db_url: str, journal: Journal, database: str, reason: str) -> None:
    """An unreachable database stops `journal serve` at start-up with status 3 and a line that says what to check."""
    unreachable = urlunsplit(urlsplit(db_url)._replace(path="", query="")) + database
    if "?" not in database:
        unreachable += "?" + urlsplit(db_url).query
    with journal("serve", "--port", "0", env={"DATABASE_URL": unreachable}) as cli:
        assert cli.process.wait(timeout=60) == 3
        output = cli.process.communicate()[0]
    assert (
        f"RuntimeError: cannot connect to the journal database ({reason}); "
        "check DATABASE_URL and that Postgres is running"
    ) in output
    assert "Application startup failed. Exiting." in output


def test_dev_runs_embedded_postgres_migrates_and_serves(tmp_path: Path, migrations_dir: Path, journal: Journal) -> None:
    """`journal dev` without DATABASE_URL starts an embedded Postgres, migrates it, serves, and stops it all."""
    data = tmp_path / "pg"
    env = {"DATABASE_URL": "", "JOURNAL_MIGRATIONS_DIR": str(migrations_dir)}
    with journal("dev", "--port", "0", "--data", str(data), env=env) as cli:
        cli.wait_for_line(rf"embedded Postgres running, data in {data}")
        cli.wait_for_line(r"applied 1 migration\(s\): 0001_journal.sql")
        cli.wait_for_line(r"serving on http://127.0.0.1:0")
        base = cli.wait_for_line(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")[1]
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert cli.interrupt() == 0
    assert (data / "PG_VERSION").exists()  # kept for next time
    assert not (data / "postmaster.pid").exists()  # but the server was stopped


def test_dev_uses_database_url_when_set(db_url: str, migrations_dir: Path, journal: Journal) -> None:
    """With DATABASE_URL set, `journal dev` starts no Postgres of its own."""
    with journal("dev", "--port", "0", "--dir", str(migrations_dir), env={"DATABASE_URL": db_url}) as cli:
        cli.wait_for_line(r"journal is up to date \(1 migrations\)")
        cli.wait_for_line(r"Uvicorn running on")
        assert cli.interrupt() == 0
    assert not any("embedded Postgres" in line for line in cli.lines)
