"""API keys (docs/60_ACCESS.md#api-keys): the CLI, hashed storage, grants enforced on replay and live, expiry,
revocation at subscribe, /metrics."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from journal_api.access.grants import Grant
from journal_api.cli import main
from journal_api.stream.app import create_app

from .conftest import TOKEN, Client, Connect, MakeSettings, StartServer, write
from .tokens import make_key


def create(db_url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    """Run ``journal keys ARGS`` in-process; its status, stdout lines and stderr."""
    status = main(["keys", *args])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


@pytest.fixture
def with_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    return db_url


async def refused(client: Client, **fields: object) -> tuple[int | None, list[dict[str, object]]]:
    await client.send({"op": "subscribe", **fields})
    return await client.closed()


def test_create_prints_the_key_once_alone_on_the_last_line_and_stores_only_its_hash(
    with_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The key is `jk_` + id + secret, printed once on the last line; the table holds its SHA-256, not the key;
    `list` shows name, grant, times, never the key."""
    status, lines, _ = create(
        with_db, capsys, "create", "risk", "--channels", "trades,snapshots", "--symbols", "BTC-USD"
    )
    assert status == 0
    key = lines[-1]
    assert key.startswith("jk_")
    assert len(key) == 3 + 8 + 1 + 43
    assert lines[0] == "key risk: channels=trades,snapshots symbols=BTC-USD, expires never"
    assert all(key not in line for line in lines[:-1])

    async def stored() -> asyncpg.Record:
        conn = await asyncpg.connect(with_db)
        try:
            row = await conn.fetchrow("SELECT id, secret_hash, grant_json::text AS g FROM access_keys")
            assert row is not None
            return row
        finally:
            await conn.close()

    row = asyncio.run(stored())
    assert row["id"] == key[3:11]
    assert bytes(row["secret_hash"]) == hashlib.sha256(key.encode()).digest()
    assert key[12:] not in row["g"]
    status, lines, _ = create(with_db, capsys, "list")
    assert status == 0
    assert lines[0] == "name\tid\tgrant\tcreated\tlast used\texpires"
    [line] = lines[1:]
    assert line.startswith(f"risk\t{key[3:11]}\tchannels=trades,snapshots symbols=BTC-USD\t20")
    assert line.endswith("\tnever\tnever")
    assert key[12:] not in "\n".join(lines)


def test_create_takes_every_grant_option_and_an_expiry(with_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--types, --levels (a level means it and every more severe one), --metrics and --expires-in are stored."""
    status, lines, _ = create(
        with_db, capsys, "create", "ops", "--types", "risk.*", "--types", "order.filled", "--levels", "warn",
        "--metrics", "--expires-in", "30d",
    )  # fmt: skip
    assert status == 0
    assert lines[0].startswith("key ops: types=risk.*,order.filled levels>=warn metrics, expires 20")
    status, lines, _ = create(with_db, capsys, "create", "all", "--levels", "error,critical")
    assert (status, lines[0]) == (0, "key all: levels>=error, expires never")
    status, lines, _ = create(with_db, capsys, "create", "plain")
    assert (status, lines[0]) == (0, "key plain: everything, expires never")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "bad name"], "'bad name' is not a key name"),
        (["create", "x", "--expires-in", "3 weeks"], "--expires-in '3 weeks': use a number and a unit"),
        (["create", "x", "--expires-in", "0d"], "--expires-in '0d'"),
        (["create", "x", "--levels", "loud"], "--levels: unknown level(s) loud"),
        (["create", "x", "--levels", "info,critical"], "the grant is not valid"),
        (["create", "x", "--channels", "nope"], "the grant is not valid"),
        (["revoke", "nobody"], "no key named 'nobody' that is not revoked"),
    ],
)
def test_bad_key_commands_say_what_to_change(
    with_db: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status, _, err = create(with_db, capsys, *args)
    assert status == 2
    assert err.startswith(f"journal keys: {message}")


def test_a_name_is_taken_until_its_key_is_revoked(with_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Two live keys cannot share a name; after `revoke` the name is free, and `list --all` shows both."""
    assert create(with_db, capsys, "create", "dash")[0] == 0
    status, _, err = create(with_db, capsys, "create", "dash")
    assert (status, err) == (2, "journal keys: a key named 'dash' exists; revoke it first or choose another name\n")
    status, lines, _ = create(with_db, capsys, "revoke", "dash")
    assert (status, lines) == (0, ["revoked key dash; its live sessions are being closed"])
    assert create(with_db, capsys, "create", "dash")[0] == 0
    assert len(create(with_db, capsys, "list")[1]) == 2
    _, lines, _ = create(with_db, capsys, "list", "--all")
    assert lines[0].endswith("\trevoked")
    assert [line.split("\t")[-1] == "-" for line in lines[1:]] == [False, True]


def test_key_commands_need_a_migrated_database(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    status, _, err = create(empty_db_url, capsys, "list")
    assert (status, err) == (2, "journal keys: the access tables are missing; run `journal migrate` first\n")


async def test_a_key_for_trades_of_btc_sees_exactly_those_on_replay_and_live(
    db_url: str, conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """The grant is the filter when the client sends none: only trades of BTC-USD, replayed and live; heartbeats
    still advance past the hidden events."""
    key = await make_key(db_url, "risk", Grant(channels=("trades",), symbols=("BTC-USD",)))
    await write(conn, 2, type="trade.filled", symbol="ETH-USD")
    wanted = await write(conn, 2, type="trade.filled", symbol="BTC-USD")
    await write(conn, 2, type="order.submitted", symbol="BTC-USD")
    async with journal_server(heartbeat_s=0.2) as server, connect(server.url) as client:
        await client.subscribe(token=key, cursor="0")
        replayed = await client.events_through(wanted[-1])
        assert [int(event["id"]) for event in replayed] == wanted
        hidden = await write(conn, 3, type="order.submitted", symbol="BTC-USD")
        await write(conn, 1, type="trade.filled", symbol="ETH-USD")
        live = await write(conn, 1, type="trade.filled", symbol="BTC-USD")
        [event] = await client.events_through(live[0])
        assert (event["channel"], event["symbol"]) == ("trades", "BTC-USD")
        beat = await client.frame()
        while beat["op"] != "heartbeat" or int(beat["cursor"]) < live[0]:
            assert beat["op"] == "heartbeat", beat  # no other frame: nothing of the hidden events
            beat = await client.frame()
        assert int(beat["cursor"]) > hidden[-1]


@pytest.mark.parametrize(
    "asked",
    [
        {"channels": ["events"]},
        {"channels": ["trades", "events"]},
        {"symbols": ["ETH-USD"]},
        {"types": ["order.*"]},
        {"types": ["trade.*", "risk.halt"]},
        {"min_level": "debug"},
    ],
)
async def test_a_filter_beyond_the_grant_is_forbidden(
    db_url: str, journal_server: StartServer, connect: Connect, asked: dict[str, object]
) -> None:
    """Asking for more than the grant: error forbidden, close 4403."""
    grant = Grant(
        channels=("trades",), types=("trade.*",), symbols=("BTC-USD",), levels=("info", "warn", "error", "critical")
    )
    key = await make_key(db_url, "risk", grant)
    async with journal_server() as server, connect(server.url) as client:
        code, frames = await refused(client, token=key, filter=asked)
    assert code == 4403
    [error] = frames
    assert error["code"] == "forbidden"
    assert "not granted" in str(error["message"])


async def test_a_filter_inside_the_grant_is_served(
    db_url: str, conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A narrower filter than the grant is the client's own: an exact type under a granted prefix, a level above."""
    key = await make_key(db_url, "risk", Grant(types=("trade.*",), levels=("info", "warn", "error", "critical")))
    await write(conn, 1, type="trade.filled", level="info")
    wanted = await write(conn, 1, type="trade.filled", level="warn")
    async with journal_server() as server, connect(server.url) as client:
        await client.subscribe(token=key, cursor="0", filter={"types": ["trade.filled"], "min_level": "warn"})
        assert [int(e["id"]) for e in await client.events_through(wanted[0])] == wanted


async def test_revoked_expired_and_unknown_keys_are_refused(
    db_url: str, conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """A revoked key: token_revoked; past its expiry: token_expired; unknown or altered: unauthorized; all 4401."""
    revoked = await make_key(db_url, "gone")
    await conn.execute("UPDATE access_keys SET revoked_at = now() WHERE name = 'gone'")
    expired = await make_key(db_url, "old", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    good = await make_key(db_url, "good")
    altered = good[:-1] + ("A" if good[-1] != "A" else "B")
    cases = [(revoked, "token_revoked"), (expired, "token_expired"), (altered, "unauthorized")]
    cases += [("jk_00000000_" + "A" * 43, "unauthorized"), ("jk_not-a-key-at-all", "unauthorized")]
    async with journal_server() as server:
        for key, error in cases:
            async with connect(server.url) as client:
                code, frames = await refused(client, token=key)
            assert (code, [frame["code"] for frame in frames]) == (4401, [error])
        async with connect(server.url) as client:
            await client.subscribe(token=good)


async def test_last_used_is_written_at_most_once_a_minute(
    db_url: str, conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """The first subscribe records last-used; the next within a minute writes nothing."""
    key = await make_key(db_url, "dash")
    async with journal_server() as server:
        async with connect(server.url) as client:
            await client.subscribe(token=key)
        first = await conn.fetchval("SELECT last_used_at FROM access_keys")
        assert first is not None
        async with connect(server.url) as client:
            await client.subscribe(token=key)
        assert await conn.fetchval("SELECT last_used_at FROM access_keys") == first
        await conn.execute("UPDATE access_keys SET last_used_at = now() - interval '2 minutes'")
        async with connect(server.url) as client:
            await client.subscribe(token=key)
        assert await conn.fetchval("SELECT last_used_at FROM access_keys") > first


async def test_metrics_needs_a_credential_with_metrics(
    db_url: str, journal_server: StartServer, connect: Connect
) -> None:
    """/metrics: no or a wrong credential 401; a key without metrics 403; a key with it, or an operator token, 200."""
    plain = await make_key(db_url, "plain")
    scraper = await make_key(db_url, "scraper", Grant(metrics=True))
    async with journal_server() as server, httpx.AsyncClient(base_url=server.base) as http:
        statuses = []
        for headers in ({}, {"Authorization": "Bearer nope-nope-nope-nope"}, {"Authorization": f"Bearer {plain}"}):
            statuses.append((await http.get("/metrics", headers=headers)).status_code)
        assert statuses == [401, 401, 403]
        forbidden = await http.get("/metrics", headers={"Authorization": f"Bearer {plain}"})
        assert forbidden.json()["error"] == "forbidden"
        for token in (scraper, TOKEN):
            response = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
            assert "journal_sessions" in response.text


async def test_the_server_starts_on_keys_alone_and_refuses_with_no_credential_source(
    db_url: str, make_settings: MakeSettings, journal_server: StartServer, connect: Connect
) -> None:
    """Without JOURNAL_TOKENS or JWTs the server needs a live key in the database, or it refuses to start and
    says what to configure."""
    app = create_app(make_settings(tokens=""))
    with pytest.raises(RuntimeError, match=r"^no credential is configured: set JOURNAL_TOKENS"):
        async with app.router.lifespan_context(app):
            raise AssertionError("started with no credential")
    key = await make_key(db_url, "only")
    async with journal_server(tokens="") as server, connect(server.url) as client:
        await client.subscribe(token=key)


async def test_a_server_without_tokens_on_an_unmigrated_database_says_to_migrate(
    empty_db_url: str, make_settings: MakeSettings
) -> None:
    app = create_app(make_settings(tokens="", database_url=empty_db_url))
    with pytest.raises(RuntimeError, match=r"^the access tables are missing .*; run `journal migrate` first$"):
        async with app.router.lifespan_context(app):
            raise AssertionError("started on an unmigrated database")
