"""The ``journal-engine`` command, in-process and as a user runs it (docs/20_EVENT_JOURNAL.md#the-demo-publisher)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from journal_engine.cli import main

COMMAND = Path(sys.executable).parent / "journal-engine"
DEADLINE = 30.0


async def count_rows(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval("SELECT count(*) FROM events")
    return value


def test_missing_database_url_exits_2_and_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without DATABASE_URL nothing is written: status 2 and a message naming the variable."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["demo", "--count", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "journal-engine demo: DATABASE_URL is not set: point it at the journal's database\n"


def test_empty_database_url_counts_as_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty DATABASE_URL is refused like a missing one."""
    monkeypatch.setenv("DATABASE_URL", "")
    assert main(["demo"]) == 2
    assert "DATABASE_URL is not set" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--rate", "abc"], "argument --rate: 'abc' is not a number of events per second"),
        (["demo", "--rate", "0"], "argument --rate: rate must be between 0.1 and 10000 events per second, got 0"),
        (
            ["demo", "--rate", "20000"],
            "argument --rate: rate must be between 0.1 and 10000 events per second, got 20000",
        ),
        (
            ["demo", "--rate", "0.09"],
            "argument --rate: rate must be between 0.1 and 10000 events per second, got 0.09",
        ),
        (["demo", "--rate", "nan"], "argument --rate: rate must be between 0.1 and 10000 events per second, got nan"),
        (["demo", "--count", "0"], "argument --count: count must be a whole number of events, 1 or more, got '0'"),
        (["demo", "--count", "x"], "argument --count: count must be a whole number of events, 1 or more, got 'x'"),
        (["demo", "--count", "-3"], "argument --count: count must be a whole number of events, 1 or more, got '-3'"),
        (["demo", "--count", "2.5"], "argument --count: count must be a whole number of events, 1 or more, got '2.5'"),
        (
            ["demo", "--count", "\u00b2"],
            "argument --count: count must be a whole number of events, 1 or more, got '\u00b2'",
        ),
        (["demo", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Bad options stop argparse with status 2 and the type function's own message, before any connection."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    prog = "journal-engine demo" if argv else "journal-engine"
    assert err.splitlines()[-1] == f"{prog}: error: {message}"


@pytest.mark.parametrize("rate", ["0.1", "10000", "1e3"])
async def test_rate_limits_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    conn: asyncpg.Connection,
    rate: str,
) -> None:
    """The bounds of --rate are allowed, and any float spelling is; the banner shows the rate."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert await asyncio.wait_for(asyncio.to_thread(main, ["demo", "--rate", rate, "--count", "1"]), DEADLINE) == 0
    shown = f"{float(rate):g}"
    assert capsys.readouterr().out == f"writing about {shown} events/s (Ctrl-C to stop)\nwrote 1 events\n"
    assert await count_rows(conn) == 1


async def test_demo_with_count_writes_that_many_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str, conn: asyncpg.Connection
) -> None:
    """`demo --count 25` writes 25 rows, prints how many it wrote and exits 0."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    argv = ["demo", "--rate", "10000", "--count", "25", "--seed", "1"]
    assert await asyncio.wait_for(asyncio.to_thread(main, argv), DEADLINE) == 0
    out, err = capsys.readouterr()
    assert out == "writing about 10000 events/s (Ctrl-C to stop)\nwrote 25 events\n"
    assert err == ""
    assert await count_rows(conn) == 25


async def test_demo_with_a_seed_writes_the_same_events_each_time(
    monkeypatch: pytest.MonkeyPatch, db_url: str, conn: asyncpg.Connection
) -> None:
    """Two runs with one seed write the same sequence of events."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    argv = ["demo", "--rate", "10000", "--count", "30", "--seed", "5"]
    for _ in range(2):
        assert await asyncio.wait_for(asyncio.to_thread(main, argv), DEADLINE) == 0
    query = "SELECT type, level, symbol, trade_id, payload FROM events ORDER BY id"
    rows = [tuple(r) for r in await conn.fetch(query)]
    assert len(rows) == 60
    assert rows[:30] == rows[30:]


async def test_interrupted_demo_exits_0_and_reports_what_it_wrote(db_url: str, conn: asyncpg.Connection) -> None:
    """The real command, stopped with Ctrl-C (SIGINT), exits 0, says stopped and prints the rows it committed."""
    env = {**os.environ, "DATABASE_URL": db_url}
    process = await asyncio.create_subprocess_exec(
        str(COMMAND),
        "demo",
        "--rate",
        "200",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while (rows := await count_rows(conn)) < 10:
            assert process.returncode is None, "journal-engine exited before writing 10 rows"
            assert loop.time() < deadline, f"only {rows} rows after {DEADLINE} s"
            await asyncio.sleep(0.01)
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), DEADLINE)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    written = await count_rows(conn)
    assert written >= 10
    lines = stdout.decode().splitlines()
    assert lines == ["writing about 200 events/s (Ctrl-C to stop)", f"wrote {written} events"]
    assert stderr.decode() == "stopped\n"
