"""Redaction's cost per event (issue 12), and a replay-only run of the stream before and after a change.

    uv run --group bench python services/api/bench/redaction_cost.py
    uv run --group bench python services/api/bench/redaction_cost.py --replay 1000000 --before /tmp/main-src

The first form prints the cost rows ``run.py`` adds to its report. ``--replay N`` loads N typical rows into an
embedded Postgres and replays them to one resuming client (with 10 live clients at 10 events/s, as ``run.py``
does), alternating a server that imports ``--before`` (a ``src`` directory, e.g. ``git archive main
services/api/src``) with this checkout's, twice each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from journal_api.journal.redaction import may_hold_secrets, redact

__all__ = ["CLEAN", "FREE_TEXT", "costs", "redaction_rows"]

# A typical fill: ids, symbol, numbers, a timestamp and a short note; 400 bytes of JSON.
CLEAN = json.dumps(
    {
        "order_id": "ord-20261130-000123",
        "client_order_id": "c-88812",
        "symbol": "BTC-USD",
        "side": "buy",
        "quantity": 0.5,
        "price": 97012.5,
        "venue": "sim",
        "ts": "2026-11-30T14:03:58.123456+00:00",
        "status": "filled",
        "fee": 0.12,
        "fee_currency": "USD",
        "note": "x" * 138,
    }
)
# A venue error echoed in full: prose, a request with a query string, an embedded JSON body: 2 KB to scan.
_PROSE = (
    "The venue rejected the order because the available margin was insufficient at the time of the request; "
    "the engine will retry after the next funding interval unless the operator cancels the strategy. "
)
FREE_TEXT = json.dumps(
    {
        "message": (_PROSE * 10)[:1820]
        + " request: GET https://api.example.com/api/v3/order?symbol=BTCUSDT&side=BUY&apikey=Zk39fQp2LmX8aT4r"
        + ' body: {"user": "engine", "password":"n0t-a-real-one"} at 2026-11-30T14:03:58Z',
        "code": -2019,
        "venue": "sim",
    }
)


def _per_call_us(call: Callable[[], Any], seconds: float = 1.0) -> float:
    """Microseconds per call, the best of five rounds of about ``seconds / 5`` each."""
    best = float("inf")
    count = 1
    while True:  # find a count that takes ~1/5 of the budget
        started = time.perf_counter()
        for _ in range(count):
            call()
        elapsed = time.perf_counter() - started
        if elapsed > seconds / 50:
            break
        count *= 4
    count = max(1, int(count * (seconds / 5) / elapsed))
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            call()
        best = min(best, (time.perf_counter() - started) / count)
    return best * 1e6


def _full_path(text: str) -> Any:
    """What the stream does with a payload's text: the one check, then (when it says so) decode, redact, encode."""
    if may_hold_secrets(text):
        return orjson.dumps(redact(orjson.loads(text)))
    return text


def costs() -> dict[str, float]:
    """Microseconds per event: the clean payload's one check, and the free-text payload's full redaction."""
    assert not may_hold_secrets(CLEAN), "the clean payload must stay on the fast path"
    assert may_hold_secrets(FREE_TEXT), "the free-text payload must be scanned"
    return {
        "clean_us": _per_call_us(lambda: _full_path(CLEAN)),
        "free_text_us": _per_call_us(lambda: _full_path(FREE_TEXT)),
    }


def redaction_rows() -> list[tuple[str, str, str, str]]:
    """The report's rows: redaction's cost per event (run once per event, never per client)."""
    c = costs()
    return [
        (
            f"redaction per event, clean {len(CLEAN)}-byte payload (one RE2 check, copied as stored)",
            "report",
            f"{c['clean_us']:.2f} µs",
            "",
        ),
        (
            f"redaction per event, {len(FREE_TEXT):,}-byte free-text payload (check, decode, scan, mask, encode)",
            "report",
            f"{c['free_text_us']:.1f} µs",
            "",
        ),
    ]


def engine_comparison() -> dict[str, float]:
    """Microseconds for the one check on the clean payload: every trigger as one Python ``re`` alternation, as one
    RE2 alternation, and as the RE2 set the journal uses (the measurement that chose the engine)."""
    import re

    import re2  # type: ignore[import-untyped]

    from journal_api.journal.secret_rules import RULES, may_match

    scoped = (f"(?i:{t[4:]})" if t.startswith("(?i)") else f"(?:{t})" for t in (rule.trigger for rule in RULES))
    triggers = "|".join(scoped)  # the rules' triggers (the set also holds the sensitive key parts)
    python_re, one_re2 = re.compile(triggers), re2.compile(triggers)
    return {
        "python_re_us": _per_call_us(lambda: python_re.search(CLEAN)),
        "re2_alternation_us": _per_call_us(lambda: one_re2.search(CLEAN)),
        "re2_set_us": _per_call_us(lambda: may_match(CLEAN)),
    }


async def _replay(rows: int, before: Path | None, rounds: int) -> list[tuple[str, dict[str, float]]]:
    import asyncpg

    # The bench's harness (same directory), split by role since issue 10.
    from harness import create_database, database_dsn, running, start_ours
    from replay import replay_with_live
    from writers import load_rows

    from journal_api.journal.embedded import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="journal-redaction-bench-"))
    embedded = EmbeddedPostgres(work / "pg", on_stop="delete")
    results: list[tuple[str, dict[str, float]]] = []
    try:
        admin = await asyncpg.connect(embedded.dsn)
        dsn = database_dsn(embedded.dsn, await create_database(admin, embedded.dsn, None))
        await admin.close()
        print(f"loaded {rows:,} rows at {await load_rows(dsn, rows):,.0f} rows/s", flush=True)
        servers = [("before", {"PYTHONPATH": str(before)})] if before is not None else []
        for _ in range(rounds):
            for label, env in [*servers, ("after", {})]:
                async with running(start_ours(dsn, work, **env)) as server:
                    result = await replay_with_live(dsn, server, rows, 10)
                print(f"{label}: {result['rate']:,.0f} events/s, live p99 {result['live_p99_ms']:.2f} ms", flush=True)
                results.append((label, result))
    finally:
        embedded.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=int, help="also replay this many rows to one resuming client")
    parser.add_argument("--before", type=Path, help="a src directory the 'before' server imports")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for row in redaction_rows():
        print(" | ".join(row))
    print(", ".join(f"{name} {value:.2f}" for name, value in engine_comparison().items()))
    if args.replay:
        asyncio.run(_replay(args.replay, args.before, args.rounds))


if __name__ == "__main__":
    main()
