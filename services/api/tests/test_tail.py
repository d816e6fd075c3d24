"""`journal tail`: prints the stream, keeps the cursor, reconnects and resumes (docs/30_WS_PROTOCOL.md#journal-tail)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import asyncpg
import pytest
import websockets
from websockets.asyncio.server import ServerConnection

from journal_api.cli import main
from journal_api.client.tail import Tail

from .conftest import TOKEN, CliProcess, Journal, StartServer, free_port, write


async def line(cli: CliProcess, pattern: str) -> str:
    """The next output line matching ``pattern`` (read in a thread: the server runs on this loop)."""
    match = await asyncio.to_thread(cli.wait_for_line, pattern)
    return match.string.rstrip("\n")


async def event_ids(cli: CliProcess, count: int) -> list[str]:
    return [json.loads(await line(cli, r"^\{"))["id"] for _ in range(count)]


async def test_tail_prints_json_keeps_the_cursor_and_resumes_after_a_restart(
    conn: asyncpg.Connection, journal_server: StartServer, journal: Journal, tmp_path: Path
) -> None:
    """Each event is one JSON line; the cursor file follows; a server restart (1012) is survived exactly."""
    port = free_port()
    cursor_file = tmp_path / "cursor.json"
    url = f"ws://127.0.0.1:{port}/ws"
    epoch = str(await conn.fetchval("SELECT epoch FROM journal_meta"))
    await write(conn, 3)
    args = ("tail", "--url", url, "--cursor", "0", "--cursor-file", str(cursor_file))
    with journal(*args, env={"JOURNAL_TOKEN": TOKEN}) as cli:
        async with journal_server(port=port):
            first = [json.loads(await line(cli, r"^\{")) for _ in range(3)]
        await line(cli, r"^journal tail: closed 1012 \(.*\); reconnecting in 0\.[56] s$")
        await write(conn, 2)
        async with journal_server(port=port):
            rest = await event_ids(cli, 2)
            # Printed first, saved next: a crash in between prints an event again on resume, never loses one.
            for _ in range(6000):
                if json.loads(cursor_file.read_text()) == {"cursor": "5", "epoch": epoch}:
                    break
                await asyncio.sleep(0.01)
            assert json.loads(cursor_file.read_text()) == {"cursor": "5", "epoch": epoch}
        assert cli.interrupt() == 0
    assert [event["id"] for event in first] + rest == ["1", "2", "3", "4", "5"]
    assert first[0] == {
        "id": "1",
        "ts": first[0]["ts"],
        "type": "order.submitted",
        "channel": "events",
        "level": "info",
        "public_safe": False,
        "symbol": None,
        "trade_id": None,
        "payload": {"side": "buy"},
    }


async def test_tail_survives_a_killed_server_and_a_refused_connection(
    db_url: str, conn: asyncpg.Connection, journal: Journal, tmp_path: Path
) -> None:
    """A server process killed outright (no close frame) and a port with nobody behind it: tail keeps trying,
    then resumes from its cursor file with nothing lost or repeated."""
    port = str(free_port())
    server_env = {"DATABASE_URL": db_url, "JOURNAL_TOKENS": TOKEN}
    cursor_file = tmp_path / "cursor.json"
    tail_args = ("tail", "--url", f"ws://127.0.0.1:{port}/ws", "--cursor", "0", "--cursor-file", str(cursor_file))
    await write(conn, 2)
    with journal(*tail_args, env={"JOURNAL_TOKEN": TOKEN}) as tail:
        with journal("serve", "--port", port, env=server_env) as server:
            assert await event_ids(tail, 2) == ["1", "2"]
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
        await line(tail, r"^journal tail: closed 1006 \(connection lost\); reconnecting in 0\.[56] s$")
        await line(tail, r"^journal tail: cannot connect: .*; reconnecting in 1\.[01] s$")
        await write(conn, 2)
        with journal("serve", "--port", port, env=server_env) as server:
            assert await event_ids(tail, 2) == ["3", "4"]
            assert tail.interrupt() == 0
            assert server.interrupt() == 0


async def test_tail_filters_and_pretty_lines(
    conn: asyncpg.Connection, journal_server: StartServer, journal: Journal
) -> None:
    """Filter options select events as the protocol's filter does; --pretty prints one readable line each."""
    await conn.execute(
        "INSERT INTO events (ts, type, symbol, trade_id, payload) VALUES "
        "('2026-11-26T09:14:03.5Z', 'order.submitted', 'BTC-USD', 'T-1', '{}'), "
        "('2026-11-26T09:14:04Z', 'trade.filled', 'ETH-USD', 'T-1', '{}'), "
        "('2026-11-26T09:14:05Z', 'trade.filled', 'BTC-USD', 'T-1', '{\"side\": \"buy\"}')"
    )
    async with journal_server() as server:
        args = ["tail", "--url", server.url, "--cursor", "0", "--pretty", "--channel", "trades", "--type", "trade.*"]
        args += ["--symbol", "BTC-USD", "--trade-id", "T-1", "--min-level", "info"]
        with journal(*args, env={"JOURNAL_TOKEN": TOKEN}) as cli:
            first = await line(cli, r"^\d+ ")
            await write(conn, type="trade.closed", symbol="BTC-USD", trade_id="T-1", payload='{"pnl": 1.5}')
            second = await line(cli, r"^\d+ ")
            assert cli.interrupt() == 0
    assert first == '3 2026-11-26T09:14:05Z info  trade.filled BTC-USD T-1 {"side":"buy"}'
    assert second.startswith("4 ")
    assert second.endswith(' info  trade.closed BTC-USD T-1 {"pnl":1.5}')


async def test_tail_resumes_from_its_cursor_file(
    conn: asyncpg.Connection, journal_server: StartServer, journal: Journal, tmp_path: Path
) -> None:
    """A cursor file written by an earlier run is where the next run starts."""
    epoch = str(await conn.fetchval("SELECT epoch FROM journal_meta"))
    cursor_file = tmp_path / "cursor.json"
    cursor_file.write_text(json.dumps({"cursor": "2", "epoch": epoch}))
    await write(conn, 4)
    async with journal_server() as server:
        with journal(
            "tail", "--url", server.url, "--cursor-file", str(cursor_file), env={"JOURNAL_TOKEN": TOKEN}
        ) as cli:
            assert await event_ids(cli, 2) == ["3", "4"]
            assert cli.interrupt() == 0


@pytest.mark.parametrize(
    ("token", "cursor_file", "message"),
    [
        (
            "wrong-token-0123456789",
            None,
            'the server refused the subscription (4401): missing or wrong token: send "Authorization: Bearer '
            '<token>" or "token" in subscribe',
        ),
        (
            TOKEN,
            {"cursor": "0", "epoch": "00000000-0000-4000-8000-000000000000"},
            "the server rejected the cursor (4409 epoch_mismatch): this journal's epoch is",
        ),
    ],
)
async def test_tail_stops_when_the_server_refuses_for_good(
    journal_server: StartServer,
    journal: Journal,
    tmp_path: Path,
    token: str,
    cursor_file: dict[str, str] | None,
    message: str,
) -> None:
    """A wrong token or a cursor from another journal cannot be fixed by retrying: exit 2 with the reason."""
    args = []
    if cursor_file is not None:
        (tmp_path / "cursor.json").write_text(json.dumps(cursor_file))
        args = ["--cursor-file", str(tmp_path / "cursor.json")]
    async with journal_server() as server:
        with journal("tail", "--url", server.url, *args, env={"JOURNAL_TOKEN": token}) as cli:
            assert await asyncio.to_thread(cli.process.wait, 60) == 2
            output = cli.process.communicate()[0]
    assert output.startswith(f"journal tail: {message}")


@pytest.mark.parametrize(
    ("environment", "args", "file_text", "message"),
    [
        (
            {},
            [],
            None,
            "JOURNAL_TOKEN is not set: export the token the server was given, or name a command with --token-command",
        ),
        ({"JOURNAL_TOKEN": TOKEN}, ["--url", "ws://:::bad"], None, "--url: 'ws://:::bad' is not a WebSocket URL"),
        ({"JOURNAL_TOKEN": TOKEN}, ["--url", "http://x/ws"], None, "--url: 'http://x/ws' is not a WebSocket URL"),
        ({"JOURNAL_TOKEN": TOKEN}, [], "not json", "is not a cursor file; delete it or name another"),
        ({"JOURNAL_TOKEN": TOKEN}, [], "[1, 2]", "is not a cursor file; delete it or name another"),
    ],
)
def test_tail_refuses_bad_settings(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    environment: dict[str, str],
    args: list[str],
    file_text: str | None,
    message: str,
) -> None:
    """Missing token, a URL that is not a WebSocket, a corrupt cursor file: status 2 and what to do."""
    monkeypatch.delenv("JOURNAL_TOKEN", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if file_text is not None:
        (tmp_path / "cursor.json").write_text(file_text)
        args = [*args, "--cursor-file", str(tmp_path / "cursor.json")]
    assert main(["tail", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("journal tail: ")
    assert message in err


async def test_tail_stops_when_the_url_is_not_a_journal_server(journal: Journal) -> None:
    """A WebSocket server that does not speak journal.v1 is reported, not retried forever."""

    async def not_a_journal(socket: ServerConnection) -> None:
        await socket.send("hello")
        await socket.wait_closed()

    async with websockets.serve(not_a_journal, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with journal("tail", "--url", f"ws://127.0.0.1:{port}/ws", env={"JOURNAL_TOKEN": TOKEN}) as cli:
            assert await asyncio.to_thread(cli.process.wait, 60) == 2
            output = cli.process.communicate()[0]
    assert (
        output
        == f"journal tail: ws://127.0.0.1:{port}/ws sent a frame that is not journal.v1 JSON: is it a journal server?\n"
    )


def test_a_tail_never_shows_its_token() -> None:
    """Printing or logging a Tail shows no token."""
    assert TOKEN not in repr(Tail(url="ws://127.0.0.1:1/ws", token=TOKEN))
