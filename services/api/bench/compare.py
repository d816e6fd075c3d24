"""The before/after section of a bench run (issues 11 and 14): the writers' cost and one client's delivery, for
this working tree side by side with earlier revisions (``versions.REVISIONS``) in the same run.

``run.py`` calls :func:`measure` once, with its figures' ``set``, and puts :func:`rows` into its table.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from delivery import Delivery, deliver, pooled
from loadgen import Workers
from versions import CURRENT, REVISIONS, checked_out, create_journal, serve, target
from writer_cost import TWINS, Insert, commit_latency, rounds

__all__ = ["PLAN", "measure", "rows"]

# plan fields (full, quick) for run.py's Plan
PLAN: dict[str, tuple[Any, Any]] = {
    "writer_counts": ((1, 2, 8), (1, 8)),
    "writer_seconds": (2.0, 0.3),
    "writer_rounds": (4, 1),  # an even count: each variant runs as often in the forward order as in reverse
    "writer_work_s": (0.002, 0.002),
    "holder_seconds": (5.0, 1.0),
    "holder_writers": (4, 4),
    "holder_rate": (200.0, 200.0),  # commits per second per writer
    # (events/s, events); at 10/s, 900 events make the p99 the ninth-worst sample rather than the third
    "delivery": (((10.0, 900), (2000.0, 10_000)), ((10.0, 20), (2000.0, 1000))),
    "delivery_rounds": (3, 1),  # the events of each delivery row are split over this many alternating rounds
}

_BEFORE, _HORIZON = list(REVISIONS)
_MISSING = "not measured (revision not in this clone)"
_NAMES = {
    "alone": "current with no server (its triggers alone)",
    "alone_read": "current with no server, read back by a bare reader",
    "current": "current with its server and 1 client",
}

Record = Callable[[str, float, str], None]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


async def measure(
    admin: asyncpg.Connection,
    server_url: str,
    plan: Any,
    log: Path | None,
    work: Path,
    names: list[str],
    record: Record,
) -> None:
    """Every figure of :func:`rows`, through ``record(name, value, text)``; databases made are added to ``names``
    (the caller drops them)."""
    token = "bench-compare-" + uuid.uuid4().hex
    with checked_out(list(REVISIONS)) as versions:
        print("writers (twins and versions)", flush=True)
        tables = await create_journal(admin, server_url, CURRENT, names)
        conn = await asyncpg.connect(tables)
        await conn.execute(TWINS)
        await conn.close()
        journals = {label: await create_journal(admin, server_url, v, names) for label, v in versions.items()}
        variants = {"plain": Insert(tables, "plain"), "twin": Insert(tables, "notify_row")}
        variants |= {label: Insert(dsn) for label, dsn in journals.items()}
        # the same journal with no server at all: what the triggers alone cost, apart from the server and its client
        variants["alone"] = Insert(await create_journal(admin, server_url, CURRENT, names))
        # what reading every row back costs by itself, with no server: the plain table read by a bare reader (the
        # floor of any design that delivers on this machine), and the journal read by one with the hub's statement
        variants["plain_read"] = Insert(tables, "plain", read_back=True)
        variants["alone_read"] = Insert(variants["alone"].dsn, read_back=True)
        with serve(CURRENT, journals["current"], work, token) as server:
            attached = await asyncio.to_thread(Workers, target(server.port, token), 1, 1)
            listening = await asyncpg.connect(journals["current"])  # counts the writers' NOTIFYs
            notified = [0]
            await listening.add_listener("events", lambda *_: notified.__setitem__(0, notified[0] + 1))
            try:
                for mode, work_s in (("auto", 0.0), ("work", plan.writer_work_s)):
                    for n in plan.writer_counts:
                        measured = await rounds(
                            {k: dataclasses.replace(v, work_s=work_s) for k, v in variants.items()},
                            n,
                            plan.writer_seconds,
                            plan.writer_rounds,
                        )
                        for label, value in measured.items():
                            record(f"w_{mode}_{n}_{label}", value, f"{value:,.0f} rows/s")
                await asyncio.sleep(0.5)  # the last notifications arrive
                written = await listening.fetchval("SELECT count(*) FROM events")  # one event per transaction
                share = notified[0] / written
                record("w_current_notify", share, f"{share:.1%} of {written:,}")
                for size in (1, 10):
                    measured = await rounds(
                        {kind: Insert(tables, f"notify_{kind}", rows=size) for kind in ("row", "stmt")},
                        8,
                        plan.writer_seconds,
                        plan.writer_rounds,
                    )
                    for kind, value in measured.items():
                        record(f"notify_{kind}_{size}", value, f"{value:,.0f} rows/s")
                for hold in (False, True):
                    latency = await commit_latency(
                        journals["current"], plan.holder_writers, plan.holder_rate, plan.holder_seconds, hold=hold
                    )
                    record(f"holder_current_{hold}", latency.percentile(99) * 1e3, latency.describe())
            finally:
                await listening.close()
                await asyncio.to_thread(attached.wait_for, 0, 0)
        if _BEFORE in journals:  # the same with the global id lock, no server: what issue 11 removed
            for hold in (False, True):
                latency = await commit_latency(
                    journals[_BEFORE], plan.holder_writers, plan.holder_rate, plan.holder_seconds, hold=hold
                )
                record(f"holder_{_BEFORE}_{hold}", latency.percentile(99) * 1e3, latency.describe())

        print("delivery (versions)", flush=True)
        if log is not None:  # before any server connects: a session reads it when it starts
            for dsn in journals.values():
                await admin.execute(f"ALTER DATABASE {urlsplit(dsn).path[1:]} SET log_statement = 'all'")
        # The versions take turns, one server at a time (an idle one's watchdog reads would be counted as another's
        # statements), and each row pools its rounds: drift in this shared machine's speed falls on all of them alike.
        parts: dict[tuple[str, float], list[Delivery]] = {}
        for _ in range(plan.delivery_rounds):
            for label, version in versions.items():
                with serve(version, journals[label], work, token) as server:
                    for rate, count in plan.delivery:
                        got = await deliver(journals[label], server, token, rate, count // plan.delivery_rounds, log)
                        parts.setdefault((label, rate), []).append(got)
        for (label, rate), deliveries in parts.items():
            got = pooled(deliveries)
            key = f"d_{label}_{rate:g}"
            record(key, got.latency.percentile(50) * 1e3, got.describe())
            p99 = got.latency.percentile(99) * 1e3
            record(f"{key}_p99", p99, f"{p99:.2f} ms")
            if got.statements_per_event is not None:
                record(f"{key}_statements", got.statements_per_event, f"{got.statements_per_event:.3f}")
            record(f"{key}_notify", got.notify_share, f"{got.notify_share:.1%} of {got.events:,}")


def rows(v: dict[str, float], t: dict[str, str], plan: Any) -> list[tuple[str, str, str, str]]:
    """The report's rows: (figure, target, measured, verdict)."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    def have(*keys: str) -> bool:
        return all(k in v for k in keys)

    out: list[tuple[str, str, str, str]] = []
    for mode, how in (("auto", "autocommit"), ("work", f"{plan.writer_work_s * 1e3:g} ms of work in each transaction")):
        for n in plan.writer_counts:
            key = f"w_{mode}_{n}_"
            plain, twin = v[key + "plain"], v[key + "twin"]
            parts = [f"plain {plain:,.0f}", f"NOTIFY twin {twin:,.0f} ({_ratio(twin, plain)} plain)"]
            if (read := v.get(key + "plain_read")) is not None:
                parts.append(f"plain read back by a bare reader {read:,.0f} ({_ratio(read, plain)} plain)")
            for label in (_BEFORE, _HORIZON, "alone", "alone_read", "current"):
                name = _NAMES.get(label, label)
                got = v.get(key + label)
                parts.append(
                    f"{name} {got:,.0f} ({_ratio(got, plain)} plain, {_ratio(got, twin)} twin)"
                    if got is not None
                    else f"{name} {_MISSING}"
                )
            target, ok = "report", ""
            current = v[key + "current"]
            if read is not None:
                parts.append(f"current over plain read back {_ratio(current, read)}")
            if n == 8 and mode == "auto":
                target = "current >= 0.9x NOTIFY twin (issue 11); >= 0.75x plain (issue 14)"
                ok = verdict(current >= 0.9 * twin and current >= 0.75 * plain)
            elif n == 8:
                target = "current >= 0.9x NOTIFY twin (issue 11)"
                ok = verdict(current >= 0.9 * twin)
            out.append(
                (
                    f"insert throughput, {n} writer{'s' if n > 1 else ''}, {how} (rows/s, median of "
                    f"{plan.writer_rounds} alternating rounds of {plan.writer_seconds:g} s)",
                    target,
                    "; ".join(parts),
                    ok,
                )
            )
    for size in (1, 10):
        row, stmt = v[f"notify_row_{size}"], v[f"notify_stmt_{size}"]
        out.append(
            (
                f"one NOTIFY per statement (newest id) vs one per row, 8 writers, {size}-row INSERTs, twin tables",
                "report (keep the faster)",
                f"per statement {stmt:,.0f} vs per row {row:,.0f} rows/s ({_ratio(stmt, row)})",
                "",
            )
        )
    holder = (
        f"other writers' commit latency, {plan.holder_writers} writers at {plan.holder_rate:g}/s each, without / "
        f"with one transaction holding an event open {plan.holder_seconds:g} s"
    )
    out.append(
        (
            f"{holder} (current, its server and 1 client)",
            "p99 with <= 2x without (issue 11)",
            f"{t['holder_current_False']} / {t['holder_current_True']}",
            verdict(v["holder_current_True"] <= 2 * v["holder_current_False"]),
        )
    )
    if have(f"holder_{_BEFORE}_False"):
        out.append(
            (
                f"{holder} ({_BEFORE}, before issue 11)",
                "reference",
                f"{t[f'holder_{_BEFORE}_False']} / {t[f'holder_{_BEFORE}_True']}",
                "",
            )
        )
    for rate, _count in plan.delivery:
        before, horizon, current = (f"d_{label}_{rate:g}" for label in (_BEFORE, _HORIZON, "current"))
        what = f"commit -> raw receive, 1 client at {rate:,g} events/s"
        out.append(
            (f"{what}, {_BEFORE} ({REVISIONS[_BEFORE]})", "reference", t.get(before, _MISSING), ""),
        )
        within = "p50 and p99 within 10% of " + _BEFORE
        ok = have(before, horizon)
        out.append(
            (
                f"{what}, {_HORIZON} ({REVISIONS[_HORIZON]})",
                within + " (issue 11)",
                t.get(horizon, _MISSING),
                verdict(v[horizon] <= 1.1 * v[before] and v[horizon + "_p99"] <= 1.1 * v[before + "_p99"])
                if ok
                else "",
            )
        )
        checks = [v[current + "_p99"] <= 5]
        if have(horizon):
            checks.append(v[current] <= v[horizon] + 0.5)
        if have(before):
            checks.append(v[current] <= 1.1 * v[before] and v[current + "_p99"] <= 1.1 * v[before + "_p99"])
        out.append(
            (
                f"{what}, current",
                f"p50 <= {_HORIZON}'s + 0.5 ms, p99 <= 5 ms (issue 14); {within} (issue 11)",
                t[current],
                verdict(all(checks)),
            )
        )
    if have(*(f"d_current_{rate:g}_statements" for rate, _ in plan.delivery)):
        top = max(rate for rate, _ in plan.delivery)
        rates = " / ".join(f"{rate:,g}" for rate, _ in plan.delivery)
        per = [
            f"{label} " + " / ".join(t.get(f"d_{label}_{rate:g}_statements", "-") for rate, _ in plan.delivery)
            for label in (_BEFORE, _HORIZON, "current")
        ]
        out.append(
            (
                f"database statements per event, 1 client at {rates} events/s",
                f"current <= 1.0 at {top:,g}/s (issue 14)",
                "; ".join(per),
                verdict(v[f"d_current_{top:g}_statements"] <= 1.0),
            )
        )
    rates = " / ".join(f"{rate:,g}" for rate, _ in plan.delivery)
    out.append(
        (
            "writing transactions that sent a NOTIFY (current; per-row designs 100%): during the insert-throughput "
            f"rows / 1 client at {rates} events/s",
            "report",
            " / ".join([t["w_current_notify"], *(t[f"d_current_{rate:g}_notify"] for rate, _ in plan.delivery)]),
            "",
        )
    )
    return out
