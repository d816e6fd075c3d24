"""Credentials over time on a live stream (docs/60_ACCESS.md#expiry-on-a-live-stream): `expiring`, the close at
expiry plus grace with a resume that loses nothing, the in-band `auth` refresh, revocation. Every frame is checked
against docs/asyncapi.yaml."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from journal_api.access.credentials import Authenticator, Credential
from journal_api.access.grants import Grant
from journal_api.access.revocation import Revocations
from journal_api.cli import main
from journal_api.journal.models import EventFilter
from journal_api.stream.guard import Guard

from .conftest import Client, Connect, MakeSettings, StartServer, write
from .test_asyncapi import assert_closed_as_documented, assert_documented
from .tokens import SECRET, claims, make_key, sign

Frame = dict[str, Any]
SHORT = {"jwt_secret": SECRET, "token_grace_s": 0.2, "jwt_leeway_s": 0}


def token(seconds: float, **overrides: Any) -> tuple[str, int]:
    """An HS256 token for alice expiring in ``seconds``; and its exp."""
    exp = int(time.time() + seconds)
    return sign(SECRET, claims(exp=exp, **overrides)), exp


async def until_op(client: Client, op: str) -> list[Frame]:
    """Frames up to and including the first with ``op``, each documented."""
    frames = [await client.frame()]
    while frames[-1]["op"] != op:
        frames.append(await client.frame())
    for frame in frames:
        assert_documented(frame)
    return frames


async def test_a_stream_is_warned_then_closed_at_expiry_and_resumes_losing_nothing(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """`expiring` comes JOURNAL_TOKEN_EXPIRING_S before exp; at exp plus grace, error token_expired and 4401, never
    before exp; resubscribing with a new token and the last cursor gets exactly the events written meanwhile."""
    before = await write(conn, 3)
    async with journal_server(token_expiring_s=2, **SHORT) as server:
        async with connect(server.url) as client:
            first, exp = token(5)  # made now: a loaded machine may take seconds to get here
            await client.subscribe(token=first, cursor="0")
            frames = await until_op(client, "expiring")
            assert frames[-1] == {"op": "expiring", "exp": exp}
            assert time.time() >= exp - 2 - 1  # not much earlier than the lead time
            during = await write(conn, 2)
            code, rest = await client.closed()
            closed_at = time.time()
        assert_closed_as_documented(code, rest, "token_expired")
        assert closed_at >= exp
        seen = [f["event"]["id"] for f in frames + rest if f["op"] == "event"]
        last = max(int(f["cursor"]) for f in frames + rest if "cursor" in f)
        after = await write(conn, 2)
        async with connect(server.url) as client:
            await client.subscribe(token=token(300)[0], cursor=str(last))
            resumed = await client.events_through(after[-1])
    received = [int(i) for i in seen] + [int(event["id"]) for event in resumed]
    assert received == before + during + after


async def test_auth_refreshes_without_reconnecting(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A new token for the same subject is answered auth_ok with its exp; the stream outlives the old exp."""
    new, new_exp = token(300)
    async with journal_server(token_expiring_s=60, **SHORT) as server, connect(server.url) as client:
        old, old_exp = token(3)
        await client.subscribe(token=old, cursor=None)
        await until_op(client, "expiring")  # at once: the token has less than the lead time left
        await client.send({"op": "auth", "token": new})
        frames = await until_op(client, "auth_ok")
        assert frames[-1] == {"op": "auth_ok", "exp": new_exp}
        async with asyncio.timeout(30):
            while time.time() < old_exp + 0.2 + 0.5:  # past the old token's cut-off
                await client.send({"op": "ping"})
                assert (await client.frame())["op"] == "pong"
                await asyncio.sleep(0.1)
        written = await write(conn, 1)
        assert [int(e["id"]) for e in await client.events_through(written[0])] == written


@pytest.mark.parametrize(
    ("replacement", "code", "error"),
    [
        (lambda: token(300, sub="bob")[0], 4401, "unauthorized"),
        (lambda: token(300, journal={"channels": ["events"]})[0], 4403, "forbidden"),
        (lambda: token(300, journal={"symbols": ["BTC-USD"]})[0], 4403, "forbidden"),
        (lambda: token(-60)[0], 4401, "token_expired"),
        (lambda: "not-a-valid-token-at-all", 4401, "unauthorized"),
    ],
    ids=["another subject", "a grant beyond", "a narrower grant", "expired", "wrong"],
)
async def test_a_refresh_that_does_not_fit_closes_the_session(
    journal_server: StartServer, connect: Connect, replacement: Any, code: int, error: str
) -> None:
    """auth with another subject, an expired or wrong token: 4401; a grant that no longer covers the filter: 4403."""
    first, _ = token(300, journal={"channels": ["trades", "events"]})
    async with journal_server(**SHORT) as server, connect(server.url) as client:
        await client.subscribe(token=first, filter={"channels": ["trades"]})
        await client.send({"op": "auth", "token": replacement()})
        closed, frames = await client.closed()
    assert_closed_as_documented(closed, frames, error)
    assert closed == code


async def test_a_wider_grant_refreshes_but_does_not_widen_the_subscription(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    first, _ = token(300, journal={"channels": ["trades"]})
    async with journal_server(**SHORT) as server, connect(server.url) as client:
        await client.subscribe(token=first)
        await client.send({"op": "auth", "token": token(300)[0]})
        assert (await until_op(client, "auth_ok"))[-1]["op"] == "auth_ok"
        await write(conn, 2, type="order.submitted")
        trade = await write(conn, 1, type="trade.filled")
        [event] = await client.events_through(trade[0])
    assert event["channel"] == "trades"


@pytest.mark.parametrize("message", [{"op": "auth", "token": 5}, {"op": "auth", "token": ""}, {"op": "auth"}])
async def test_a_malformed_auth_is_a_bad_request(
    journal_server: StartServer, connect: Connect, message: dict[str, object]
) -> None:
    async with journal_server(**SHORT) as server, connect(server.url) as client:
        await client.subscribe(token=token(300)[0])
        await client.send(message)
        code, frames = await client.closed()
    assert_closed_as_documented(code, frames, "bad_request")


async def test_a_key_with_an_expiry_is_warned_and_closed_like_a_token(
    db_url: str, journal_server: StartServer, connect: Connect
) -> None:
    async with journal_server(token_expiring_s=60, token_grace_s=0.1) as server, connect(server.url) as client:
        key = await make_key(db_url, "temp", Grant(), expires_at=datetime.now(UTC) + timedelta(seconds=4))
        await client.subscribe(token=key)
        expiring = (await until_op(client, "expiring"))[-1]
        code, frames = await client.closed()
    assert expiring["exp"] > time.time() - 60
    assert_closed_as_documented(code, frames, "token_expired")


async def test_revoking_a_key_closes_its_sessions_and_only_those(
    db_url: str, journal_server: StartServer, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`journal keys revoke` closes the sessions using the key (error token_revoked, 4401); a session with another
    key streams on; the revoked key is refused from then on."""
    revoked, kept = await make_key(db_url, "leaked"), await make_key(db_url, "kept")
    monkeypatch.setenv("DATABASE_URL", db_url)
    async with journal_server() as server, connect(server.url) as victim, connect(server.url) as other:
        await victim.subscribe(token=revoked)
        await other.subscribe(token=kept)
        async with connect(server.url) as earlier:  # the same key, gone before the revocation
            await earlier.subscribe(token=revoked)
        assert await asyncio.to_thread(main, ["keys", "revoke", "leaked"]) == 0
        code, frames = await victim.closed()
        assert_closed_as_documented(code, frames, "token_revoked")
        await other.send({"op": "ping"})
        await until_op(other, "pong")
        async with connect(server.url) as again:
            await again.send({"op": "subscribe", "token": revoked})
            code, frames = await again.closed()
        assert (code, frames[0]["code"]) == (4401, "token_revoked")


async def test_revoking_a_jti_closes_its_sessions(
    db_url: str, journal_server: StartServer, connect: Connect, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("DATABASE_URL", db_url)
    async with journal_server(**SHORT) as server, connect(server.url) as client:
        await client.subscribe(token=token(300, jti="t-1")[0])
        assert await asyncio.to_thread(main, ["tokens", "revoke", "t-1"]) == 0
        code, frames = await client.closed()
    assert_closed_as_documented(code, frames, "token_revoked")
    assert await asyncio.to_thread(main, ["tokens", "revoke", "t-1"]) == 0
    assert await asyncio.to_thread(main, ["tokens", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["revoked jti t-1", "revoked jti t-1 (it was already)"]
    assert out[2].startswith("t-1\trevoked 20")


async def test_a_revocation_missed_while_the_listener_was_down_is_applied_on_reconnect(
    db_url: str, conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A key revoked without a notification reaching the hub (here: written by plain SQL) is found by the
    recheck that follows the listener's reconnect."""
    key = await make_key(db_url, "quiet")
    async with journal_server(**SHORT) as server, connect(server.url) as client, connect(server.url) as holder:
        await client.subscribe(token=key)
        await holder.subscribe(token=token(300, jti="quiet-jti")[0])
        await conn.execute("UPDATE access_keys SET revoked_at = now() WHERE name = 'quiet'")
        await conn.execute("INSERT INTO revoked_tokens (jti) VALUES ('quiet-jti')")
        connects = server.hub.listener_connects
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'journal-listener' "
            "AND datname = current_database()"
        )
        code, frames = await client.closed()
        assert_closed_as_documented(*(await holder.closed()), "token_revoked")
        assert server.hub.listener_connects > connects
    assert_closed_as_documented(code, frames, "token_revoked")


async def test_a_control_message_that_is_not_a_revocation_is_ignored(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    async with journal_server(**SHORT) as server, connect(server.url) as client:
        await client.subscribe(token=token(300, jti="kept")[0])
        for payload in ("not json", '{"revoked": "key"}', "[1]"):
            await conn.execute("SELECT pg_notify('journal_control', $1)", payload)
        async with asyncio.timeout(30):
            while len([r for r in caplog.records if r.getMessage().startswith("ignoring a control message")]) < 3:
                await client.send({"op": "ping"})
                await until_op(client, "pong")
        await client.send({"op": "ping"})
        await until_op(client, "pong")


class _Holder:
    """A revocable holder that only records being revoked."""

    revoked = False

    def revoke(self) -> None:
        self.revoked = True


async def test_a_recheck_that_cannot_reach_the_database_is_logged(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The recheck after a reconnect is best effort: a database that is away again is logged, not raised."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    await pool.close()
    revocations = Revocations(pool)
    holder = _Holder()
    revocations.add(("key", "00000000"), holder)
    revocations.on_control(None)
    async with asyncio.timeout(30):
        while not any(r.getMessage().startswith("cannot recheck revocations") for r in caplog.records):  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # a log line has no event to wait on
    await revocations.close()
    assert not holder.revoked
    revocations.on_control(None)  # and a recheck still in flight when the server stops is cancelled
    await revocations.close()


async def test_the_first_fault_is_the_one_a_session_closes_with(make_settings: MakeSettings, db_url: str) -> None:
    """A revocation and then an expiry (or any two faults): the session closes for the first."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    try:
        settings = make_settings()
        guard = Guard(
            Credential(subject="operator", grant=Grant(), exp=None, revocation=None),
            effective=EventFilter(),
            authenticator=Authenticator(settings, pool),
            revocations=Revocations(pool),
            settings=settings,
        )
        wakes: list[None] = []
        guard.attach(lambda: wakes.append(None))
        guard.revoke()
        await guard.refresh("wrong-token-0123456789")
        guard.detach()
    finally:
        await pool.close()
    assert guard.fault is not None
    assert (guard.fault.code, len(wakes)) == ("token_revoked", 2)
