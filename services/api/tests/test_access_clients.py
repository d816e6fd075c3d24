"""Token providers (docs/30_WS_PROTOCOL.md#python-client, #journal-tail): the Python client and `journal tail
--token-command` refresh by themselves, so a stream outlives its tokens with no event lost."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from journal_api.cli import main
from journal_api.client import ClientError, SubscriptionRefusedError, subscribe
from journal_api.client.token_command import command_token

from .conftest import Journal, StartServer, write
from .tokens import SECRET, claims, sign

REFRESHING = {"jwt_secret": SECRET, "token_expiring_s": 1, "token_grace_s": 0.3, "jwt_leeway_s": 0}


def short_token(seconds: float = 3) -> str:
    return sign(SECRET, claims(exp=int(time.time() + seconds)))


async def test_a_provider_keeps_the_stream_alive_across_token_lifetimes(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """Tokens of 3 s, `expiring` 1 s before each exp: the client refreshes in-band, never reconnects, and
    receives every event, including those written after the first token's cut-off."""
    calls: list[float] = []
    retries: list[str] = []

    def provider() -> str:
        calls.append(time.time())
        return short_token()

    async with journal_server(**REFRESHING) as server:
        events = subscribe(server.url, token=provider, cursor="0", on_retry=lambda problem, _: retries.append(problem))
        async with events:
            first = await write(conn, 2)
            received = [(await anext(events)).id for _ in first]
            deadline = calls[0] + 3 + 0.3 + 0.5  # past the first token's cut-off
            later: list[int] = []
            async with asyncio.timeout(60):
                while time.time() < deadline or len(calls) < 3:
                    later += await write(conn, 1)
                    received.append((await anext(events)).id)
                    await asyncio.sleep(0.05)  # an event now and then, while the tokens' lifetimes pass
    assert received == first + later
    assert len(calls) >= 3  # the connection's token and at least two refreshes
    assert retries == []


async def test_an_async_provider_reconnects_after_a_late_refresh_and_loses_nothing(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """With no lead time and no grace the server closes 4401 token_expired at exp: a client with a provider takes
    a fresh token, reconnects and resumes from its cursor."""
    retries: list[str] = []

    async def provider() -> str:
        return short_token(2)

    settings = REFRESHING | {"token_expiring_s": 0, "token_grace_s": 0}
    async with journal_server(**settings) as server:
        events = subscribe(server.url, token=provider, cursor="0", on_retry=lambda problem, _: retries.append(problem))
        async with events:
            written: list[int] = []
            received: list[int] = []
            async with asyncio.timeout(60):
                while not retries or len(received) < len(written) or len(written) < 3:
                    written += await write(conn, 1)
                    received.append((await anext(events)).id)
    assert received == written
    assert "a fresh credential comes from the token provider" in retries[0]


async def test_a_plain_token_that_expires_ends_the_iteration(journal_server: StartServer) -> None:
    async with journal_server(**REFRESHING) as server:
        events = subscribe(server.url, token=short_token(1))
        with pytest.raises(SubscriptionRefusedError) as caught:
            await anext(events)
    assert (caught.value.code, caught.value.error) == (4401, "token_expired")


async def test_a_failing_provider_ends_the_iteration_with_its_exception(journal_server: StartServer) -> None:
    def provider() -> str:
        raise LookupError("the identity provider is down")

    async with journal_server(**REFRESHING) as server:
        with pytest.raises(LookupError, match="the identity provider is down"):
            await anext(subscribe(server.url, token=provider))


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "mint_token.py"  # not token.py: that would shadow the standard library's module
    path.write_text(body)
    return f"{sys.executable} {path}"


async def test_tail_token_command_refreshes_by_itself(
    conn: asyncpg.Connection, journal_server: StartServer, journal: Journal, tmp_path: Path
) -> None:
    """`journal tail --token-command` runs the command for each token; the tail prints every event across token
    lifetimes and never reconnects."""
    runs = tmp_path / "runs"
    command = _script(
        tmp_path,
        "import time, jwt\n"
        f"open({str(runs)!r}, 'a').write('run\\n')\n"
        f"print(jwt.encode({{'sub': 'alice', 'aud': 'journal', 'exp': int(time.time()) + 3, 'journal': {{}}}}, "
        f"{SECRET!r}, algorithm='HS256'))\n",
    )
    async with journal_server(**REFRESHING) as server:
        with journal("tail", "--url", server.url, "--cursor", "0", "--token-command", command, env={}) as cli:
            started = time.time()
            written: list[int] = []
            async with asyncio.timeout(60):
                while time.time() < started + 4 or runs.read_text().count("run") < 3:
                    written += await write(conn, 1)  # an event now and then, while the tokens' lifetimes pass
                    await asyncio.to_thread(cli.wait_for_line, rf'"id":"{written[-1]}"')
                    await asyncio.sleep(0.1)
            assert cli.interrupt() == 0
    output = "".join(cli.lines)
    assert "reconnecting" not in output
    assert [int(line.split('"id":"')[1].split('"')[0]) for line in output.splitlines() if '"id":"' in line] == written


@pytest.mark.parametrize(
    ("body", "timeout_s", "message"),
    [
        (
            "import sys; sys.stderr.write('no session'); sys.exit(3)",
            60,
            "--token-command exited with status 3: no session",
        ),
        ("import sys; sys.exit(1)", 60, "--token-command exited with status 1: no message"),
        ("print('')", 60, "--token-command printed nothing"),
        ("import time; time.sleep(60)", 0.3, "--token-command took more than 0.3 s; it was stopped"),
    ],
)
async def test_a_failing_token_command_says_why(tmp_path: Path, body: str, timeout_s: float, message: str) -> None:
    provide = command_token(_script(tmp_path, body), timeout_s=timeout_s)
    with pytest.raises(ClientError, match=f"^{message}"):
        await provide()


async def test_a_missing_token_command_or_an_empty_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ClientError, match=r"^cannot run --token-command '/no/such/command'"):
        await command_token("/no/such/command --flag")()
    assert await asyncio.to_thread(main, ["tail", "--token-command", "  "]) == 2
    assert capsys.readouterr().err == "journal tail: --token-command is empty; name the command that prints a token\n"
