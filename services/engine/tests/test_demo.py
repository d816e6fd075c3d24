"""The demo publisher's event mix and how it writes it (docs/20_EVENT_JOURNAL.md#the-demo-publisher)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections import Counter

import asyncpg
import pytest

from journal_engine.demo import SYMBOLS, DemoMix, DemoPublisher, Row, prepare, publish

TYPE_RULE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
LEVELS = {"debug", "info", "warn", "error", "critical"}
TRADE_TYPES = {"order.submitted", "order.acknowledged", "order.rejected", "trade.filled"}
ALL_TYPES = TRADE_TYPES | {"decision.made", "risk.limit_warning", "snapshot.position", "snapshot.portfolio"}
STEPS = 400
DEADLINE = 30.0


def take(seed: int | None, count: int) -> list[list[Row]]:
    """The first ``count`` steps of the mix made with ``seed``."""
    return list(itertools.islice(DemoMix(seed).steps(), count))


async def count_rows(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval("SELECT count(*) FROM events")
    return value


async def wait_for_rows(conn: asyncpg.Connection, at_least: int) -> int:
    """Poll the row count until it reaches ``at_least``; fail after a generous deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while (rows := await count_rows(conn)) < at_least:
        assert loop.time() < deadline, f"only {rows} rows after {DEADLINE} s, expected {at_least}"
        await asyncio.sleep(0.01)
    return rows


async def wait_for_no_other_session(conn: asyncpg.Connection) -> None:
    """Poll until no session but ``conn`` is connected to its database; fail after a generous deadline."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while (others := await conn.fetchval(query)) != 0:
        assert loop.time() < deadline, f"{others} other sessions still connected after {DEADLINE} s"
        await asyncio.sleep(0.01)


async def stored(conn: asyncpg.Connection) -> list[Row]:
    """Every event in id order, as a ``Row``."""
    records = await conn.fetch("SELECT type, level, symbol, trade_id, payload FROM events ORDER BY id")
    # asyncpg returns jsonb as text unless a codec is set.
    return [Row(r["type"], r["level"], r["symbol"], r["trade_id"], json.loads(r["payload"])) for r in records]


def test_same_seed_gives_the_same_steps() -> None:
    """Two mixes made with one seed yield identical steps, so a demo run can be replayed."""
    assert take(42, STEPS) == take(42, STEPS)


def test_different_seeds_give_different_steps() -> None:
    """The seed really drives the mix: another seed yields other steps."""
    assert take(1, 20) != take(2, 20)


def test_unseeded_mix_still_follows_the_rules() -> None:
    """Without a seed the mix is random but every step still starts with a decision on a known symbol."""
    for step in take(None, 50):
        assert step[0].type == "decision.made"
        assert step[0].symbol in SYMBOLS


def test_every_row_satisfies_the_journal_schema() -> None:
    """Types follow the journal's type rule, levels are known ones, symbols come from SYMBOLS, payloads are objects."""
    for step in take(3, STEPS):
        for row in step:
            assert TYPE_RULE.fullmatch(row.type), row.type
            assert len(row.type) <= 128
            assert row.level in LEVELS
            assert row.symbol is None or row.symbol in SYMBOLS
            assert row.trade_id is None or 1 <= len(row.trade_id) <= 64
            assert isinstance(row.payload, dict)


def test_mix_contains_every_kind_of_event() -> None:
    """A few hundred steps hold every type the doc lists, each with its documented level."""
    rows = [row for step in take(7, STEPS) for row in step]
    assert {row.type for row in rows} == ALL_TYPES
    levels = {(row.type, row.level) for row in rows}
    assert levels == {
        ("decision.made", "info"),
        ("order.submitted", "info"),
        ("order.acknowledged", "info"),
        ("order.rejected", "error"),
        ("trade.filled", "info"),
        ("risk.limit_warning", "warn"),
        ("snapshot.position", "info"),
        ("snapshot.portfolio", "info"),
    }


def test_mix_sometimes_leaks_a_fake_venue_credential() -> None:
    """Some orders carry venue_auth.api_key ("demo-" and 16 hex digits) so redaction has something to hide."""
    rows = [row for step in take(7, STEPS) for row in step]
    leaks = [row for row in rows if "venue_auth" in row.payload]
    assert leaks
    for row in leaks:
        assert row.type == "order.submitted"
        assert set(row.payload["venue_auth"]) == {"api_key"}
        assert re.fullmatch(r"demo-[0-9a-f]{16}", row.payload["venue_auth"]["api_key"])
    orders = sum(row.type == "order.submitted" for row in rows)
    assert len(leaks) < orders


def test_events_sharing_a_trade_id_are_the_order_and_trade_events_of_that_trade() -> None:
    """Within a step the rows with a trade id are one trade: submitted, then rejected or acknowledged and filled."""
    trades = 0
    for step in take(11, STEPS):
        traded = [row for row in step if row.trade_id is not None]
        assert {row.trade_id for row in traded} <= {f"T-{trades + 1:06d}"}
        assert all(row.type in TRADE_TYPES for row in traded)
        assert all(row.trade_id is None for row in step if row.type not in TRADE_TYPES)
        types = [row.type for row in traded]
        assert types in (
            [],
            ["order.submitted", "order.rejected"],
            ["order.submitted", "order.acknowledged", "trade.filled"],
        )
        if traded:
            trades += 1
            submitted = traded[0].payload
            if types[-1] == "trade.filled":
                assert traded[2].payload == {
                    "side": submitted["side"],
                    "quantity": submitted["quantity"],
                    "price": submitted["limit"],
                }
    assert trades > 0


def test_each_step_is_about_one_symbol() -> None:
    """A step's decision, orders, warning and position snapshot share its symbol; the portfolio has none."""
    for step in take(5, STEPS):
        assert step[0].type == "decision.made"
        assert step[0].symbol in SYMBOLS
        for row in step:
            assert row.symbol == (None if row.type == "snapshot.portfolio" else step[0].symbol)


def test_snapshots_come_every_fifth_step() -> None:
    """Steps 5, 10, 15, ... end with a position and a portfolio snapshot; no other step has a snapshot."""
    for number, step in enumerate(take(13, STEPS), start=1):
        snapshots = [row.type for row in step if row.type.startswith("snapshot.")]
        if number % 5 == 0:
            assert snapshots == ["snapshot.position", "snapshot.portfolio"]
            assert [row.type for row in step[-2:]] == snapshots
        else:
            assert snapshots == []


async def test_publish_writes_the_rows_of_a_step_with_their_columns(conn: asyncpg.Connection) -> None:
    """Every column the engine names lands as given, in insert order, with consecutive ids and defaults elsewhere."""
    rows = [
        Row("decision.made", "info", "AAPL", None, {"action": "buy", "price": 230.5}),
        Row("order.submitted", "info", "AAPL", "T-000001", {"side": "buy", "venue_auth": {"api_key": "demo-1"}}),
        Row("order.rejected", "error", "AAPL", "T-000001", {"reason": "insufficient margin"}),
        Row("snapshot.portfolio", "info", None, None, {"equity": 1_000_000.0, "currency": "USD"}),
    ]
    await prepare(conn)
    await publish(conn, rows)
    assert await stored(conn) == rows
    records = await conn.fetch("SELECT id, public_safe, ts FROM events ORDER BY id")
    assert [r["id"] for r in records] == [1, 2, 3, 4]
    assert [r["public_safe"] for r in records] == [False] * 4
    assert all(r["ts"] is not None for r in records)


async def test_publish_writes_a_step_in_one_transaction(conn: asyncpg.Connection) -> None:
    """All rows of one step carry the same writing transaction id; the next step gets another one."""
    first, second = take(9, 2)
    await prepare(conn)
    await publish(conn, first)
    await publish(conn, second)
    xids = [r["xmin"] for r in await conn.fetch("SELECT xmin::text AS xmin FROM events ORDER BY id")]
    assert len(xids) == len(first) + len(second)
    assert len(set(xids[: len(first)])) == 1
    assert len(set(xids[len(first) :])) == 1
    assert xids[0] != xids[-1]


async def test_publish_writes_the_order_row_in_the_transaction_of_its_events(conn: asyncpg.Connection) -> None:
    """The engine's own order row changes in the same transaction as the events that record it, in between them."""
    rows = [
        Row("decision.made", "info", "AAPL", None, {}),
        Row("order.submitted", "info", "AAPL", "T-000001", {}),
        Row("order.acknowledged", "info", "AAPL", "T-000001", {}),
        Row("trade.filled", "info", "AAPL", "T-000001", {}),
    ]
    await prepare(conn)
    await prepare(conn)  # idempotent: the table is made once
    await publish(conn, rows)
    orders = await conn.fetch("SELECT symbol, status, xmin::text AS xmin FROM demo_orders")
    events = {r["xmin"] for r in await conn.fetch("SELECT xmin::text AS xmin FROM events")}
    assert [(order["symbol"], order["status"]) for order in orders] == [("AAPL", "filled")]
    assert events == {orders[0]["xmin"]}


async def test_publish_writes_nothing_of_a_step_with_a_bad_row(conn: asyncpg.Connection) -> None:
    """One bad row rolls back the whole step, so a reader never sees half an engine transaction."""
    rows = [
        Row("decision.made", "info", "AAPL", None, {}),
        Row("order.submitted", "loud", "AAPL", "T-000001", {}),
    ]
    await prepare(conn)
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await publish(conn, rows)
    assert caught.value.constraint_name == "events_level_known"
    assert await count_rows(conn) == 0


async def test_run_with_count_writes_exactly_that_many_rows(db_url: str, conn: asyncpg.Connection) -> None:
    """run(count=N) stops after N rows, cutting the last step short, returns N and counts N as written."""
    publisher = DemoPublisher(db_url, rate=10_000, seed=4)
    assert await asyncio.wait_for(publisher.run(count=37), DEADLINE) == 37
    assert publisher.written == 37
    assert await count_rows(conn) == 37
    expected = [row for step in take(4, 37) for row in step][:37]
    assert await stored(conn) == expected
    await wait_for_no_other_session(conn)


async def test_run_with_count_one_writes_only_the_first_decision(db_url: str, conn: asyncpg.Connection) -> None:
    """A count smaller than the first step writes just that many rows of it."""
    publisher = DemoPublisher(db_url, rate=10_000, seed=4)
    assert await asyncio.wait_for(publisher.run(count=1), DEADLINE) == 1
    assert publisher.written == 1
    assert await stored(conn) == take(4, 1)[0][:1]


async def test_run_at_a_high_rate_writes_many_rows(db_url: str, conn: asyncpg.Connection) -> None:
    """At 10000 events/s, 2000 rows are written well within the generous deadline."""
    publisher = DemoPublisher(db_url, rate=10_000)
    assert await asyncio.wait_for(publisher.run(count=2_000), DEADLINE) == 2_000
    assert publisher.written == 2_000
    assert await count_rows(conn) == 2_000
    types = Counter(await conn.fetchval("SELECT array_agg(type) FROM events"))
    assert set(types) <= ALL_TYPES
    assert types["decision.made"] > 0


async def test_run_without_count_writes_until_cancelled(db_url: str, conn: asyncpg.Connection) -> None:
    """With no count it keeps writing; once cancelled, written equals the rows committed and the connection closes."""
    publisher = DemoPublisher(db_url, rate=200, seed=8)
    task = asyncio.create_task(publisher.run())
    await wait_for_rows(conn, 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert publisher.written >= 20
    assert await count_rows(conn) == publisher.written
    await wait_for_no_other_session(conn)


async def test_a_cancel_during_a_step_waits_for_it_and_counts_it(db_url: str, conn: asyncpg.Connection) -> None:
    """Cancelled while a step is being written, the publisher finishes that step and counts it: written == rows."""
    blocker = conn.transaction()
    await blocker.start()
    await conn.execute("LOCK TABLE events IN SHARE MODE")  # the publisher's next insert waits for it
    publisher = DemoPublisher(db_url, rate=10_000, seed=3)
    task = asyncio.create_task(publisher.run())
    observer = await asyncpg.connect(db_url)
    try:
        for _ in range(3000):  # until the publisher's insert waits on the lock, 30 s at most
            waiting = await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if waiting:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the publisher never waited on the lock")
        task.cancel()
        await blocker.commit()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
    finally:
        await observer.close()
    assert publisher.written > 0
    assert await count_rows(conn) == publisher.written
