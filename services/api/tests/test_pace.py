"""An awake hub reads every 1 ms while the journal is calm and every 10 ms while it is busy
(docs/20_EVENT_JOURNAL.md#notify-and-waking-the-stream-only-when-it-sleeps, *Pace*)."""

from __future__ import annotations

import asyncio

import asyncpg

from journal_api.stream.pace import BUSY_POLL_S, CALM_POLL_S, Pace

from .conftest import StartServer, until_asleep, write
from .test_operations import scrape
from .test_ws_recovery import until


def test_a_new_pace_is_calm_and_reads_every_millisecond() -> None:
    pace = Pace(0.0)
    assert (pace.busy, pace.poll_s) == (False, CALM_POLL_S)


def test_3000_events_a_second_over_a_window_make_the_journal_busy() -> None:
    pace = Pace(0.0)
    pace.delivered(2_999, 1.0)
    assert pace.busy is False
    pace.delivered(1_500, 1.5)
    pace.delivered(1_500, 2.0)  # 3,000 a second over the second window
    assert (pace.busy, pace.poll_s) == (True, BUSY_POLL_S)


def test_a_window_is_judged_only_once_it_is_250_ms_long() -> None:
    pace = Pace(0.0)
    pace.delivered(1_000, 0.125)  # 8,000 a second, but only 125 ms of it: a writer catching up after a stall
    assert pace.busy is False
    pace.delivered(0, 0.25)  # 4,000 a second over 250 ms
    assert pace.busy is True


def test_a_busy_journal_stays_busy_down_to_2500_events_a_second_and_is_calm_under_it() -> None:
    pace = Pace(0.0)
    pace.delivered(5_000, 1.0)
    assert pace.busy is True
    pace.delivered(2_500, 2.0)  # 2,500 a second: still busy
    assert pace.busy is True
    pace.delivered(2_499, 3.0)
    assert (pace.busy, pace.poll_s) == (False, CALM_POLL_S)
    pace.delivered(2_999, 4.0)  # under 3,000 a second: a calm journal stays calm
    assert pace.busy is False


def test_a_reset_is_calm_and_starts_a_new_window() -> None:
    pace = Pace(0.0)
    pace.delivered(5_000, 1.0)
    pace.reset(5.0)
    assert pace.busy is False
    pace.delivered(1_000, 5.0625)  # the old window's time does not count
    assert pace.busy is False


async def test_a_flooded_journal_is_read_every_10_ms_until_the_flood_ends_and_metrics_tell(
    journal_server: StartServer, conn: asyncpg.Connection
) -> None:
    """The real hub finds a flood busy and slows its reads; once the flood ends it falls asleep, calm again."""
    async with journal_server(check_interval_s=600) as server:
        flooding = True

        async def flood() -> None:
            while flooding:
                await write(conn, 500)

        async def busy_on_metrics() -> bool:
            return (await scrape(server.base))[("journal_hub_busy", ())] == 1

        task = asyncio.create_task(flood())
        try:  # waited on, not asserted once: a writer stalled for a whole window on a loaded machine is calm for it
            wakefulness = server.hub.wakefulness
            await until(lambda: asyncio.sleep(0, wakefulness.poll_s() == BUSY_POLL_S), "the hub read at the busy pace")
            await until(busy_on_metrics, "/metrics said the journal was busy")
        finally:
            flooding = False
            await task
        await until_asleep(server.hub)
        assert server.hub.wakefulness.pace.busy is False
        assert (await scrape(server.base))[("journal_hub_busy", ())] == 0
