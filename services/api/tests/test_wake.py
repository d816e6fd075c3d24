"""Writers NOTIFY only while a hub may be asleep, and no committed row is left without a wake-up
(docs/20_EVENT_JOURNAL.md#notify-and-waking-the-stream-only-when-it-sleeps). Each race window of the protocol is
opened on purpose, step by step, on real connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from journal_api.journal.migrations import apply_migrations, load_migrations
from journal_api.journal.wake import forget_hub, may_sleep, register_hub, set_asleep
from journal_api.stream import hub as hub_module
from journal_api.stream import listener as listener_module
from journal_api.stream import wakefulness as wakefulness_module
from journal_api.stream.pace import BUSY_POLL_S, CALM_POLL_S
from journal_api.stream.wakefulness import BUSY_NOTIFICATIONS, SWEEP_S, Wakefulness

from .conftest import Connect, StartServer, until_asleep, write
from .test_operations import scrape
from .test_ws_recovery import until

if TYPE_CHECKING:
    from conftest import PostgresOutage  # the root conftest's fixture type

INSERT = "INSERT INTO events (type) VALUES ('order.submitted') RETURNING id"
_RETRIED = "reconnecting the listener failed (TimeoutError); retrying"


class Listener:
    """A LISTEN connection on channel ``events`` that records every notification's payload."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.payloads: list[str] = []

    def _record(self, *args: object) -> None:
        self.payloads.append(str(args[3]))

    async def received(self) -> list[str]:
        """Every notification delivered so far: a round trip after a commit flushes the ones it sent."""
        await self.conn.fetchval("SELECT 1")
        return self.payloads


@pytest.fixture
async def hub_conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection acting as a hub's LISTEN connection, registered awake as hub ``h``."""
    conn = await asyncpg.connect(db_url)
    await register_hub(conn, "h")
    yield conn
    await conn.close()


@pytest.fixture
async def listener(db_url: str) -> AsyncIterator[Listener]:
    conn = await asyncpg.connect(db_url)
    recorder = Listener(conn)
    await conn.add_listener("events", recorder._record)
    yield recorder
    await conn.close()


@pytest.fixture
async def writer(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_url)
    yield conn
    await conn.close()


@asynccontextmanager
async def writer_waiting_for_its_id(db_url: str, writer: asyncpg.Connection) -> AsyncIterator[asyncio.Task[int]]:
    """``writer`` inserting one event, paused after its floor and its flag read, before its nextval: another
    connection's ALTER SEQUENCE holds SHARE ROW EXCLUSIVE on the sequence (nextval waits; reading the top does not)
    until the block ends. Yields the insert's task, which then finishes."""
    blocker = await asyncpg.connect(db_url)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("ALTER SEQUENCE events_id_seq INCREMENT BY 1")
        inserting = asyncio.create_task(writer.fetchval(INSERT))
        await until(
            lambda: blocker.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", writer.get_server_pid()
            ),
            "the writer read the flags and waits for its id",
        )
        yield inserting
        await transaction.commit()
    finally:
        await blocker.close()


# The reads a test can stretch: the view that stands in for the relation, and the rest of the search_path.
STRETCHABLE = {
    "flags": ("journal_hubs", "SELECT * FROM public.journal_hubs", "public"),
    "floors": ("pg_locks", "SELECT * FROM pg_catalog.pg_locks", "pg_catalog, public"),
}
TEST_KEY = 0x54455354 << 32  # "TEST": a test's own advisory locks, outside the journal's key spaces


class Stretch:
    """One read of the protocol made to wait, on the connections it is applied to, until :meth:`release`: a view of
    the same name in a schema of its own comes first in that connection's search_path and waits on a lock held here
    before it reads. A race window between that read and the step before or after it is then as wide as the test
    wants, whatever the machine's timing, so a protocol with two steps in the wrong order fails every run.

    ``flags``: a writer's read of the hubs' flags (its statement's snapshot is taken first: it reads the flags as
    they were when the statement began). ``floors``: a hub's read of the floor locks (it waits, then reads them)."""

    def __init__(self, owner: asyncpg.Connection, step: str, key: int) -> None:
        self._owner = owner  # holds the lock the stretched read waits on
        self._step = step
        self._key = key
        self._path = f"stretch_{step}, {STRETCHABLE[step][2]}"
        self._waiting: list[int] = []

    @classmethod
    async def make(cls, db_url: str, step: str, n: int) -> Stretch:
        relation, select, _ = STRETCHABLE[step]
        stretch = cls(await asyncpg.connect(db_url), step, TEST_KEY + n)
        await stretch._owner.execute(f"""
            CREATE SCHEMA stretch_{step};
            CREATE FUNCTION stretch_{step}.wait() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock_shared({stretch._key});
                RETURN true;
            END
            $$;
            CREATE VIEW stretch_{step}.{relation} AS {select} WHERE (SELECT stretch_{step}.wait());
            SELECT pg_advisory_lock({stretch._key});
        """)
        return stretch

    async def apply(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"SET search_path = {self._path}")
        self._waiting.append(conn.get_server_pid())

    async def reached(self) -> None:
        """Wait until every connection it was applied to waits at the stretched read."""

        async def all_waiting() -> bool:
            return bool(
                await self._owner.fetchval(
                    "SELECT count(*) = cardinality($1::int[]) FROM pg_stat_activity"
                    " WHERE pid = ANY($1) AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
                    self._waiting,
                )
            )

        await until(all_waiting, f"the {self._step} read is waiting")

    async def release(self) -> None:
        await self._owner.execute("SELECT pg_advisory_unlock($1)", self._key)

    async def close(self) -> None:
        await self._owner.close()


async def test_writers_do_not_notify_while_every_hub_is_awake(
    hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """Awake hubs read by themselves: a commit sends nothing."""
    await write(writer, 3)
    assert await writer.fetchval(INSERT) == 4
    assert await listener.received() == []


async def test_a_writer_that_reads_asleep_notifies_once_with_its_first_id(
    hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """One NOTIFY per transaction, carrying the transaction's first id, whatever it inserts after."""
    await set_asleep(hub_conn, "h", True)
    async with writer.transaction():
        await write(writer, 3)
        await writer.fetchval(INSERT)
    assert await listener.received() == ["1"]


async def test_a_writer_that_read_awake_and_is_still_open_keeps_the_hub_from_sleeping(
    hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """X read "awake" (its floor taken first) and is still open when the hub checks: its floor is held, so the
    hub stays drowsy; after X commits the top has moved past what the hub delivered."""
    transaction = writer.transaction()
    await transaction.start()
    assert await writer.fetchval(INSERT) == 1  # floor, then flags: awake, so no NOTIFY
    await set_asleep(hub_conn, "h", True)
    assert not await may_sleep(hub_conn, 0)  # a floor is held
    await transaction.commit()
    assert await listener.received() == []  # it will never wake anyone: the hub must read by itself
    assert not await may_sleep(hub_conn, 0)  # the top moved past what it delivered
    assert await may_sleep(hub_conn, 1)


async def test_a_writer_that_commits_between_marking_and_checking_keeps_the_hub_from_sleeping(
    hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """X reads "awake", draws and commits before the hub's floor read: no floor is left, but the top is read
    after the floors, so the hub sees the id it has not delivered."""
    async with writer.transaction():
        assert await writer.fetchval(INSERT) == 1  # read "awake"
        await set_asleep(hub_conn, "h", True)  # the hub marks itself asleep meanwhile
    assert await listener.received() == []
    assert not await may_sleep(hub_conn, 0)


async def test_a_writer_outside_read_committed_always_notifies(
    hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """A REPEATABLE READ snapshot taken before the hub fell asleep would read "awake": such writers notify
    whatever the flags say, even with every hub awake."""
    async with writer.transaction(isolation="repeatable_read"):
        await writer.fetchval("SELECT count(*) FROM journal_hubs")  # the snapshot: nobody asleep
        await set_asleep(hub_conn, "h", True)
        assert await may_sleep(hub_conn, 0)  # nothing in flight yet: the hub sleeps
        await writer.fetchval(INSERT)
    async with writer.transaction(isolation="serializable"):
        await writer.fetchval(INSERT)
    await set_asleep(hub_conn, "h", False)
    async with writer.transaction(isolation="repeatable_read"):
        await writer.fetchval(INSERT)
    assert await listener.received() == ["1", "2", "3"]


async def test_a_declared_two_phase_writer_never_notifies_and_keeps_hubs_from_sleeping(
    hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """Declared two-phase: no NOTIFY even with a hub asleep, PREPARE works, and its floor keeps hubs awake until
    COMMIT PREPARED."""
    await set_asleep(hub_conn, "h", True)
    await writer.execute("BEGIN; SET LOCAL journal.two_phase = on")
    await writer.fetchval(INSERT)
    await writer.execute("PREPARE TRANSACTION 'wake-declared'")
    try:
        assert not await may_sleep(hub_conn, 0)
    finally:
        await hub_conn.execute("COMMIT PREPARED 'wake-declared'")
    assert await listener.received() == []
    assert await may_sleep(hub_conn, 1)


@pytest.mark.parametrize("asleep", [True, False])
async def test_an_undeclared_two_phase_writer_fails_whether_hubs_sleep_or_not(
    hub_conn: asyncpg.Connection, writer: asyncpg.Connection, asleep: bool
) -> None:
    """One rule, never only sometimes: without the declaration PREPARE is refused with or without a NOTIFY."""
    await set_asleep(hub_conn, "h", asleep)
    await writer.execute("BEGIN")
    await writer.fetchval(INSERT)
    with pytest.raises(asyncpg.FeatureNotSupportedError, match="cannot PREPARE"):
        await writer.execute("PREPARE TRANSACTION 'wake-undeclared'")
    assert await writer.fetchval("SELECT count(*) FROM pg_prepared_xacts") == 0


async def leave_a_dead_hub_asleep(db_url: str, conn: asyncpg.Connection) -> None:
    """Register hub ``dead`` asleep, then end its backend (a hub that died while asleep): its row stays."""
    dead = await asyncpg.connect(db_url)
    await register_hub(dead, "dead")
    await set_asleep(dead, "dead", True)
    dead_pid = dead.get_server_pid()
    await dead.close()
    await until(
        lambda: conn.fetchval("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1", dead_pid),
        "the dead hub's backend is gone",
    )


async def hub_names(conn: asyncpg.Connection) -> list[str]:
    names: list[str] = await conn.fetchval("SELECT array_agg(name ORDER BY name) FROM journal_hubs")
    return names


async def test_a_dead_hub_left_asleep_is_swept_and_writers_stop_notifying(
    db_url: str, hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """A hub whose backend is gone while marked asleep makes writers notify until a hub registers or changes
    its flag, which sweeps its row."""
    await leave_a_dead_hub_asleep(db_url, hub_conn)
    await writer.fetchval(INSERT)
    assert await listener.received() == ["1"]
    await set_asleep(hub_conn, "h", False)  # sweeps
    assert await hub_names(hub_conn) == ["h"]
    await writer.fetchval(INSERT)
    assert await listener.received() == ["1"]


async def test_an_awake_hub_that_notifies_still_reach_sweeps_a_dead_hub_at_most_once_a_second(
    db_url: str, hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """Under steady load an awake hub never changes its flag; a NOTIFY reaching it says some row is asleep, so it
    sweeps (no more often than SWEEP_S), and writers stop paying for a hub that died asleep."""
    state = Wakefulness("h")
    await state.start(hub_conn)  # registering sweeps: the dead hub comes after
    await leave_a_dead_hub_asleep(db_url, hub_conn)
    await writer.fetchval(INSERT)
    assert await listener.received() == ["1"]
    state._swept_at = asyncio.get_running_loop().time()  # as if it had just swept
    state.notified()
    await state.after_read(hub_conn, rows=1, delivered=1, held=False)
    assert (state.mode, await hub_names(hub_conn)) == ("awake", ["dead", "h"])  # swept under SWEEP_S ago: not yet
    state._swept_at -= SWEEP_S  # as if SWEEP_S had passed
    await state.after_read(hub_conn, rows=1, delivered=1, held=False)
    assert (state.mode, await hub_names(hub_conn)) == ("awake", ["h"])
    await writer.fetchval(INSERT)
    assert await listener.received() == ["1"]  # nobody asleep: no NOTIFY
    await state.after_read(hub_conn, rows=1, delivered=2, held=False)  # no NOTIFY since that sweep: no statement


async def test_a_hub_whose_row_vanished_makes_it_again(hub_conn: asyncpg.Connection) -> None:
    """A crash empties the UNLOGGED table: a hub that finds no row registers again and then sets its flag."""
    await hub_conn.execute("TRUNCATE journal_hubs")
    await set_asleep(hub_conn, "h", True)
    row = await hub_conn.fetchrow("SELECT name, pid, asleep FROM journal_hubs")
    assert row is not None
    assert (row["name"], row["pid"], row["asleep"]) == ("h", hub_conn.get_server_pid(), True)
    await forget_hub(hub_conn, "h")
    assert await hub_conn.fetchval("SELECT count(*) FROM journal_hubs") == 0


async def test_may_sleep_is_refused_outside_read_committed(hub_conn: asyncpg.Connection) -> None:
    """Its two reads must each take a fresh snapshot."""
    async with hub_conn.transaction(isolation="repeatable_read"):
        with pytest.raises(asyncpg.RaiseError, match="READ COMMITTED"):
            await may_sleep(hub_conn, 0)


async def test_wakefulness_sleeps_after_a_quiet_spell_and_wakes_when_busy(hub_conn: asyncpg.Connection) -> None:
    """Awake until reads have found nothing for the linger, then drowsy and (nothing in flight) asleep; asleep,
    BUSY_NOTIFICATIONS NOTIFYs within BUSY_S wake it for good, and its row says so each time."""
    state = Wakefulness("h")
    await state.start(hub_conn)

    async def flag() -> bool:
        asleep: bool = await hub_conn.fetchval("SELECT asleep FROM journal_hubs WHERE name = 'h'")
        return asleep

    await state.after_read(hub_conn, rows=0, delivered=0, held=False)  # within the linger: still awake
    assert (state.mode, await flag(), state.poll_s()) == ("awake", False, CALM_POLL_S)
    state._rows_at -= 1  # as if the linger had passed
    await state.after_read(hub_conn, rows=0, delivered=0, held=True)  # held back: no sleep
    assert (state.mode, await flag()) == ("awake", False)
    await state.after_read(hub_conn, rows=0, delivered=0, held=False)
    assert (state.mode, await flag(), state.sleeps, state.poll_s()) == ("asleep", True, 1, None)
    for _ in range(BUSY_NOTIFICATIONS - 1):
        state.notified()
    await state.after_read(hub_conn, rows=1, delivered=1, held=False)  # a few wake-ups: stays asleep
    assert state.mode == "asleep"
    state.notified()  # BUSY_NOTIFICATIONS within BUSY_S: busy
    await state.after_read(hub_conn, rows=1, delivered=2, held=False)
    assert (state.mode, await flag()) == ("awake", False)


async def test_a_drowsy_hub_that_notifications_show_busy_wakes_up(
    hub_conn: asyncpg.Connection, writer: asyncpg.Connection
) -> None:
    """Drowsy (its row says asleep; a writer in flight kept it from sleeping), writers notify: BUSY_NOTIFICATIONS
    within BUSY_S wake it as they would an asleep hub, so a burst that starts then stops paying for NOTIFY."""
    state = Wakefulness("h")
    await state.start(hub_conn)
    transaction = writer.transaction()
    await transaction.start()
    await writer.fetchval(INSERT)
    state._rows_at -= 1  # as if the linger had passed
    await state.after_read(hub_conn, rows=0, delivered=0, held=False)
    assert state.mode == "drowsy"
    await transaction.commit()
    for _ in range(BUSY_NOTIFICATIONS):
        state.notified()
    await state.after_read(hub_conn, rows=1, delivered=1, held=False)
    assert (state.mode, await hub_conn.fetchval("SELECT asleep FROM journal_hubs WHERE name = 'h'")) == (
        "awake",
        False,
    )


async def test_wakefulness_reads_at_the_busy_pace_until_it_falls_asleep_and_wakes_up_calm(
    hub_conn: asyncpg.Connection,
) -> None:
    """Awake or drowsy, the pace says how often it reads; a hub that falls asleep starts its next wake calm."""
    state = Wakefulness("h")
    await state.start(hub_conn)
    await state.after_read(hub_conn, rows=10_000, delivered=10_000, held=False)  # far beyond 3,000 a second
    state.pace.delivered(0, asyncio.get_running_loop().time() + 1)  # as if a whole window had passed
    assert (state.pace.busy, state.poll_s()) == (True, BUSY_POLL_S)
    state._rows_at -= 1  # as if the linger had passed
    await state.after_read(hub_conn, rows=0, delivered=10_000, held=False)
    assert (state.mode, state.poll_s(), state.pace.busy) == ("asleep", None, False)


async def test_wakefulness_stays_drowsy_while_a_writer_is_in_flight(
    hub_conn: asyncpg.Connection, writer: asyncpg.Connection
) -> None:
    """Drowsy and a floor held: no sleep until a later check finds nothing in flight."""
    state = Wakefulness("h")
    await state.start(hub_conn)
    transaction = writer.transaction()
    await transaction.start()
    await writer.fetchval(INSERT)
    state._rows_at -= 1
    await state.after_read(hub_conn, rows=0, delivered=0, held=False)
    assert state.mode == "drowsy"
    await transaction.rollback()
    await state.after_read(hub_conn, rows=0, delivered=1, held=False)
    assert (state.mode, state.sleeps) == ("asleep", 1)


async def test_0003_applies_while_a_writer_transaction_is_open(empty_db_url: str, migrations_dir: Path) -> None:
    """0003 replaces functions only: it waits for no writer, and the open transaction's events are delivered."""
    migrations = load_migrations(migrations_dir)
    admin, open_writer = [await asyncpg.connect(empty_db_url) for _ in range(2)]
    try:
        await apply_migrations(admin, migrations[:2])
        transaction = open_writer.transaction()
        await transaction.start()
        assert await open_writer.fetchval(INSERT) == 1
        applied = await asyncio.wait_for(apply_migrations(admin, migrations[:3]), 30)
        assert applied == ["0003_wake.sql"]
        assert await open_writer.fetchval(INSERT) == 2
        await transaction.commit()
        assert await admin.fetchval("SELECT array_agg(id ORDER BY id) FROM events") == [1, 2]
    finally:
        await admin.close()
        await open_writer.close()


async def test_a_sleeping_hub_is_woken_by_the_next_commit_and_shows_it_on_metrics(
    db_url: str, journal_server: StartServer, writer: asyncpg.Connection
) -> None:
    """The real hub falls asleep when idle, the next commit notifies and wakes it, and /metrics tells."""
    async with journal_server(check_interval_s=600) as server:
        await until_asleep(server.hub)
        figures = await scrape(server.base)
        assert figures[("journal_hub_asleep", ())] == 1
        assert figures[("journal_hub_sleeps_total", ())] >= 1
        (event_id,) = await write(writer)
        await until(lambda: asyncio.sleep(0, server.hub.head == event_id), "the hub read the event")
        figures = await scrape(server.base)
        assert figures[("journal_notifications_total", ())] >= 1
    assert await writer.fetchval("SELECT count(*) FROM journal_hubs") == 0  # a clean stop removes its row


async def test_after_commit_prepared_a_notify_wakes_a_hub_that_slept_through_the_prepared_transaction(
    journal_server: StartServer, writer: asyncpg.Connection
) -> None:
    """The two-phase rule's last step: a hub asleep before the declared transaction took its floor never read it,
    so the NOTIFY that follows COMMIT PREPARED is what wakes it (its watchdog here: 600 s)."""
    async with journal_server(check_interval_s=600) as server:
        await until_asleep(server.hub)
        await writer.execute("BEGIN; SET LOCAL journal.two_phase = on")
        (event_id,) = await write(writer)
        await writer.execute("PREPARE TRANSACTION 'wake-after-commit-prepared'")
        await writer.execute("COMMIT PREPARED 'wake-after-commit-prepared'")
        assert (server.hub.wakefulness.mode, server.hub.head) == ("asleep", 0)  # nothing told it
        await writer.execute("NOTIFY events")
        await until(lambda: asyncio.sleep(0, server.hub.head == event_id), "the NOTIFY woke the hub")


async def test_a_hub_whose_flag_statement_hangs_replaces_its_connection(
    db_url: str,
    journal_server: StartServer,
    writer: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A statement that never returns (here the hub's row, locked by a stray transaction, holds up its flag's
    UPDATE) stalls the hub no longer than the read's timeout: it drops the connection, reconnects (each attempt
    bounded too), and delivers again once the lock is gone."""
    monkeypatch.setattr(hub_module, "_READ_TIMEOUT_S", 0.5)
    monkeypatch.setattr(listener_module, "CONNECT_TIMEOUT_S", 0.5)
    monkeypatch.setattr(wakefulness_module, "BUSY_NOTIFICATIONS", 1)  # one NOTIFY is busy: it writes its flag
    monkeypatch.setattr(wakefulness_module, "BUSY_S", 3600.0)
    async with journal_server(check_interval_s=600) as server:
        await until_asleep(server.hub)
        stalled = await writer.fetchval("SELECT pid FROM journal_hubs")
        stray = await asyncpg.connect(db_url)
        try:
            async with stray.transaction():
                await stray.execute("SELECT 1 FROM journal_hubs FOR UPDATE")
                await write(writer)  # notifies: the hub reads it, is busy, and its UPDATE waits on the lock
                await until(
                    lambda: writer.fetchval("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1", stalled),
                    "the hub gave up the connection whose statement never returned",
                )
                await until(  # registering waits on the same lock: each attempt is given up and tried again
                    lambda: asyncio.sleep(0, any(r.getMessage().startswith(_RETRIED) for r in caplog.records)),
                    "a reconnect attempt that hung was given up",
                )
        finally:
            await stray.close()
        (event_id,) = await write(writer)
        await until(lambda: asyncio.sleep(0, server.hub.head == event_id), "the hub delivers on its new connection")
        assert await writer.fetchval("SELECT pid FROM journal_hubs") != stalled


async def test_a_writer_paused_between_its_floor_and_its_id_keeps_the_hub_from_sleeping(
    db_url: str, hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """X has taken its floor and read "awake" but not drawn its id (its nextval waits on a lock held here): the
    top still equals what the hub delivered, so only X's floor keeps the hub awake; X then commits silently."""
    async with writer_waiting_for_its_id(db_url, writer) as inserting:
        await set_asleep(hub_conn, "h", True)
        assert not await may_sleep(hub_conn, 0)  # nothing drawn yet: the floor is all that shows X
    assert await asyncio.wait_for(inserting, 30) == 1
    assert await listener.received() == []  # X read "awake": this row wakes nobody


async def test_after_a_postgres_crash_empties_journal_hubs_the_hub_registers_again_and_delivers(
    db_url: str,
    journal_server: StartServer,
    connect: Connect,
    postgres_outage: PostgresOutage,
) -> None:
    """An immediate stop (a crash) empties the UNLOGGED table at recovery: the hub reconnects, registers again
    awake, falls asleep again and is woken by the next commit; nothing is lost."""
    async with journal_server(check_interval_s=600) as server, connect(server.url) as client:
        await client.subscribe(cursor="0")
        await until_asleep(server.hub)
        await postgres_outage.begin(crash=True)
        await postgres_outage.end()
        observer = await asyncpg.connect(db_url)
        try:

            async def registered() -> bool:
                return bool(
                    await observer.fetchval(
                        "SELECT count(*) = 1 FROM journal_hubs WHERE name = $1", server.hub.wakefulness.name
                    )
                )

            await until(registered, "the hub registered again")
            await until_asleep(server.hub)
            ids = await write(observer, 2)
            assert [int(event["id"]) for event in await client.events_through(ids[-1])] == ids
        finally:
            await observer.close()


@asynccontextmanager
async def writer_stopped_after_reading_awake(
    db_url: str, writer: asyncpg.Connection, hub_conn: asyncpg.Connection
) -> AsyncIterator[tuple[asyncio.Task[int], Stretch]]:
    """``writer`` inserting one event, stopped right after its read of the flags ("awake"); then hub ``h`` marks
    itself asleep. Yields the insert's task and the stretch that lets it go on."""
    stretch = await Stretch.make(db_url, "flags", 1)
    try:
        await stretch.apply(writer)
        inserting = asyncio.create_task(writer.fetchval(INSERT))
        await stretch.reached()
        await set_asleep(hub_conn, "h", True)
        yield inserting, stretch
    finally:
        await stretch.close()  # also lets the writer go on if the test failed


async def test_a_writer_that_read_awake_and_has_not_drawn_its_id_keeps_the_hub_from_sleeping(
    db_url: str, hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """X reads "awake" and stops right there; the hub marks itself asleep and checks while X has drawn nothing (the
    top equals what the hub delivered). Only X's floor shows it, so the floor must be taken before the flag read:
    a writer that read the flags first would take its floor after the check, and its row would wake nobody."""
    async with writer_stopped_after_reading_awake(db_url, writer, hub_conn) as (inserting, stretch):
        assert not await may_sleep(hub_conn, 0)  # X's floor is held
        await stretch.release()
        assert await asyncio.wait_for(inserting, 30) == 1
    assert await listener.received() == []  # X read "awake": its row wakes nobody, so the hub must not sleep
    assert not await may_sleep(hub_conn, 0)
    assert await may_sleep(hub_conn, 1)


async def test_a_writer_that_commits_between_the_checks_top_and_floor_reads_keeps_the_hub_from_sleeping(
    db_url: str, hub_conn: asyncpg.Connection, writer: asyncpg.Connection, listener: Listener
) -> None:
    """X reads "awake"; the hub marks itself asleep and its check stops before reading the floors; X draws id 1 and
    commits (its floor goes); then the check reads the floors (none). Only a top read after the floor read sees
    id 1: a check that read the top first would have read 0, and slept past X's row."""
    floors = await Stretch.make(db_url, "floors", 2)
    try:
        async with writer_stopped_after_reading_awake(db_url, writer, hub_conn) as (inserting, flags):
            await floors.apply(hub_conn)
            checking = asyncio.create_task(may_sleep(hub_conn, 0))
            await floors.reached()
            await flags.release()
            assert await asyncio.wait_for(inserting, 30) == 1  # committed: X's floor is gone
            await floors.release()
            assert not await asyncio.wait_for(checking, 30)
    finally:
        await floors.close()
    assert await listener.received() == []  # X's row wakes nobody: the hub had to see it
