"""The ``journal`` command as users run it: migrate, serve, dev (docs/20_EVENT_JOURNAL.md#running-it)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import websockets

from journal_api.cli import main
from journal_api.journal.embedded import EmbeddedPostgres

from .conftest import SHIPPED, TOKEN, Journal


def test_migrate_applies_then_reports_up_to_date(
    empty_db_url: str, migrations_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`journal migrate` applies what is missing, then says the journal is up to date."""
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    assert main(["migrate", "--dir", str(migrations_dir)]) == 0
    assert capsys.readouterr().out == f"applied {len(SHIPPED)} migration(s): {', '.join(SHIPPED)}\n"
    assert main(["migrate", "--dir", str(migrations_dir)]) == 0
    assert capsys.readouterr().out == f"journal is up to date ({len(SHIPPED)} migrations)\n"


def test_migrate_finds_the_folder_from_the_environment(
    empty_db_url: str, migrations_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """JOURNAL_MIGRATIONS_DIR names the folder when --dir is not given."""
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    monkeypatch.setenv("JOURNAL_MIGRATIONS_DIR", str(migrations_dir))
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out == f"applied {len(SHIPPED)} migration(s): {', '.join(SHIPPED)}\n"


def test_migrate_needs_database_url(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Without DATABASE_URL `journal migrate` stops with status 2 and says what to set."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err == (
        "journal migrate: DATABASE_URL is not set: point it at a Postgres 16 database, "
        "or use `make run`, which starts an embedded one\n"
    )


def test_serve_refuses_to_start_without_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without DATABASE_URL and tokens `journal serve` says what is missing, and how to make a token."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("JOURNAL_TOKENS", raising=False)
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == (
        "journal serve: DATABASE_URL: not set; JOURNAL_TOKENS: not set; JOURNAL_TOKENS takes comma-separated "
        "tokens, e.g. JOURNAL_TOKENS=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\n"
    )


def test_serve_refuses_short_tokens_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A weak token is refused, and the message never repeats it."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1/x")
    monkeypatch.setenv("JOURNAL_TOKENS", f"{TOKEN},weak-secret-1")
    monkeypatch.setenv("JOURNAL_HEARTBEAT_S", "0")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "journal serve: JOURNAL_TOKENS: every token must be at least 16 characters long; "
        "JOURNAL_HEARTBEAT_S: Input should be greater than or equal to 0.05;"
    )
    assert "weak-secret-1" not in err
    assert TOKEN not in err


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
    with journal("serve", "--port", "0", env={"DATABASE_URL": db_url, "JOURNAL_TOKENS": TOKEN}) as cli:
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
    with journal("serve", "--port", "0", env={"DATABASE_URL": unreachable, "JOURNAL_TOKENS": TOKEN}) as cli:
        assert cli.process.wait(timeout=60) == 3
        output = cli.process.communicate()[0]
    assert (
        f"RuntimeError: cannot connect to the journal database ({reason}); "
        "check DATABASE_URL and that Postgres is running"
    ) in output
    assert "Application startup failed. Exiting." in output


def test_serve_refuses_a_database_without_the_journal(empty_db_url: str, journal: Journal) -> None:
    """A database that was never migrated stops `journal serve` with a line that says to migrate."""
    with journal("serve", "--port", "0", env={"DATABASE_URL": empty_db_url, "JOURNAL_TOKENS": TOKEN}) as cli:
        assert cli.process.wait(timeout=60) == 3
        output = cli.process.communicate()[0]
    assert "HorizonUnusableError: the journal's tables are missing; run `journal migrate` first" in output


async def test_dev_runs_postgres_migrations_demo_and_server(
    postgres_data: Path, migrations_dir: Path, journal: Journal
) -> None:
    """`journal dev` (what `make run` runs) starts an embedded Postgres, migrates it, starts the demo publisher,
    prints a development token, serves /ws, and stops it all on Ctrl-C."""
    data = postgres_data
    env = {"DATABASE_URL": "", "JOURNAL_TOKENS": "", "JOURNAL_MIGRATIONS_DIR": str(migrations_dir)}
    with journal("dev", "--port", "0", "--data", str(data), "--demo-rate", "50", env=env) as cli:
        cli.wait_for_line(rf"embedded Postgres running, data in {data}")
        cli.wait_for_line(rf"applied {len(SHIPPED)} migration\(s\): {re.escape(', '.join(SHIPPED))}")
        token = cli.wait_for_line(r"development token \(made for this run\): (\S{32})")[1]
        cli.wait_for_line(r"demo publisher writing 50 events/s")
        cli.wait_for_line(r"serving ws://127.0.0.1:0/ws")
        port = cli.wait_for_line(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as socket:
            await socket.send(json.dumps({"op": "subscribe", "token": token, "cursor": "0"}))
            frames = [json.loads(await asyncio.wait_for(socket.recv(), 30))]
            while sum(frame["op"] == "event" for frame in frames) < 3:
                frames.append(json.loads(await asyncio.wait_for(socket.recv(), 30)))
        assert frames[0]["op"] == "ready"
        events = [frame["event"] for frame in frames if frame["op"] == "event"]
        assert events[0]["type"] == "decision.made"  # the demo's first step starts with a decision
        assert [int(event["id"]) for event in events] == sorted(int(event["id"]) for event in events)
        assert cli.interrupt() == 0
    assert (data / "PG_VERSION").exists()  # kept for next time
    assert not (data / "postmaster.pid").exists()  # but the server was stopped
    assert any(line.startswith("wrote ") for line in "".join(cli.lines).splitlines())  # the demo stopped cleanly


async def test_dev_uses_database_url_and_tokens_when_set(db_url: str, migrations_dir: Path, journal: Journal) -> None:
    """With DATABASE_URL and JOURNAL_TOKENS set, `journal dev` starts no Postgres and makes no token;
    --demo-rate 0 starts no publisher. Stopped by SIGTERM, it leaves that database alone."""
    env = {"DATABASE_URL": db_url, "JOURNAL_TOKENS": TOKEN}
    args = ("dev", "--port", "0", "--dir", str(migrations_dir), "--demo-rate", "0")
    with journal(*args, env=env) as cli:
        cli.wait_for_line(rf"journal is up to date \({len(SHIPPED)} migrations\)")
        cli.wait_for_line(r"Uvicorn running on")
        assert cli.interrupt(signum=signal.SIGTERM) == 0
    output = "".join(cli.lines)
    assert "embedded Postgres" not in output
    assert "development token" not in output
    assert "demo publisher" not in output
    assert "Finished server process" in output  # uvicorn shut down gracefully
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM journal_meta") == 1  # the server still answers
    finally:
        await conn.close()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda stop: stop.name)
def test_dev_stops_the_postgres_it_started_on_every_stop_signal(
    postgres_data: Path, migrations_dir: Path, journal: Journal, stop: signal.Signals
) -> None:
    """Ctrl-C, SIGTERM (`kill`, `timeout`, systemd) and SIGHUP (a closed terminal) all stop `journal dev` the same
    way: uvicorn shuts down, the demo publisher reports, the embedded Postgres it started is gone, status 0."""
    data = postgres_data
    env = {"DATABASE_URL": "", "JOURNAL_TOKENS": TOKEN, "JOURNAL_MIGRATIONS_DIR": str(migrations_dir)}
    with journal("dev", "--port", "0", "--data", str(data), "--demo-rate", "50", env=env) as cli:
        cli.wait_for_line(rf"embedded Postgres running, data in {data}")
        cli.wait_for_line(r"Uvicorn running on")
        cli.seen_or_wait_for(r"writing about 50 events/s")  # the publisher is up: stopping it makes it report
        postmaster = _postmaster_pid(data)
        assert _alive(postmaster)
        assert (data / "owner.pid").read_text() == f"{cli.process.pid}\n"
        assert cli.interrupt(signum=stop) == 0
    assert not _alive(postmaster)
    assert not (data / "postmaster.pid").exists()
    assert not (data / "owner.pid").exists()
    assert (data / "PG_VERSION").exists()  # the data is kept for next time
    output = "".join(cli.lines)
    assert "Finished server process" in output
    # the demo publisher stopped cleanly (and is gone: its end of the output pipe is closed)
    assert any(line.startswith("wrote ") for line in output.splitlines())


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=lambda stop: stop.name)
def test_dev_stopped_with_its_process_group_shuts_down_cleanly(
    postgres_data: Path, migrations_dir: Path, journal: Journal, stop: signal.Signals
) -> None:
    """`timeout` and a closed terminal signal the whole process group, the demo publisher too: the server still
    shuts down gracefully, and the embedded Postgres it started is gone."""
    data = postgres_data
    env = {"DATABASE_URL": "", "JOURNAL_TOKENS": TOKEN, "JOURNAL_MIGRATIONS_DIR": str(migrations_dir)}
    with journal("dev", "--port", "0", "--data", str(data), "--demo-rate", "50", env=env) as cli:
        cli.wait_for_line(r"Uvicorn running on")
        cli.seen_or_wait_for(r"writing about 50 events/s")
        postmaster = _postmaster_pid(data)
        assert cli.interrupt(signum=stop, group=True) == 0
    assert not _alive(postmaster)
    output = "".join(cli.lines)
    assert "Application shutdown complete." in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("stop", "recorded"),
    [(signal.SIGINT, True), (signal.SIGTERM, True), (signal.SIGHUP, True), (signal.SIGTERM, False)],
    ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGTERM-started-by-something-else"],
)
async def test_dev_leaves_running_a_postgres_another_process_started(
    postgres_data: Path, migrations_dir: Path, journal: Journal, stop: signal.Signals, recorded: bool
) -> None:
    """A server already running in the data folder for a live process (here: this test), or with no owner.pid at
    all, is used, and whatever stops `journal dev`, it keeps running for the process that started it."""
    data = postgres_data
    server = EmbeddedPostgres(data, on_stop="delete")
    try:
        if not recorded:
            (data / "owner.pid").unlink()
        postmaster = _postmaster_pid(data)
        env = {"DATABASE_URL": "", "JOURNAL_TOKENS": TOKEN, "JOURNAL_MIGRATIONS_DIR": str(migrations_dir)}
        with journal("dev", "--port", "0", "--data", str(data), "--demo-rate", "0", env=env) as cli:
            cli.wait_for_line(
                rf"^embedded Postgres already running in {data}, started by another process: "
                r"using it, and leaving it running$"
            )
            cli.wait_for_line(r"applied \d+ migration\(s\)")  # however many are shipped
            cli.wait_for_line(r"Uvicorn running on")
            assert cli.interrupt(signum=stop) == 0
        assert "Finished server process" in "".join(cli.lines)
        assert _alive(postmaster)
        assert (data / "owner.pid").exists() == recorded  # `journal dev` did not claim it
        if recorded:
            assert (data / "owner.pid").read_text() == f"{os.getpid()}\n"
        conn = await asyncpg.connect(server.dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM journal_meta") == 1  # and it still answers
        finally:
            await conn.close()
    finally:
        server.stop()
    assert not _alive(postmaster)  # its starter stops it


def test_dev_killed_outright_does_not_leave_postgres_running_for_good(
    postgres_data: Path, migrations_dir: Path, journal: Journal
) -> None:
    """A `journal dev` killed with SIGKILL cannot stop its Postgres; the next one reuses it and stops it on exit."""
    data = postgres_data
    env = {"DATABASE_URL": "", "JOURNAL_TOKENS": TOKEN, "JOURNAL_MIGRATIONS_DIR": str(migrations_dir)}
    args = ("dev", "--port", "0", "--data", str(data), "--demo-rate", "0")
    with journal(*args, env=env) as first:
        first.wait_for_line(r"Uvicorn running on")
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
    postmaster = _postmaster_pid(data)
    assert _alive(postmaster)  # orphaned, still running
    with journal(*args, env=env) as second:
        second.wait_for_line(
            rf"^embedded Postgres left running in {data} by a process that is gone: this run will stop it$"
        )
        second.wait_for_line(r"journal is up to date")
        second.wait_for_line(r"Uvicorn running on")
        assert (data / "owner.pid").read_text() == f"{second.process.pid}\n"
        assert second.interrupt(signum=signal.SIGTERM) == 0
    assert not _alive(postmaster)
    assert not (data / "postmaster.pid").exists()
    assert "Failed" not in "".join(second.lines)


def _postmaster_pid(data: Path) -> int:
    """The process id of the Postgres server running in the data folder ``data`` (postmaster.pid's first line)."""
    return int((data / "postmaster.pid").read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: it exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # the state follows the command name, which may hold spaces
