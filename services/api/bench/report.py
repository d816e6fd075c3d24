"""The measured part of docs/BENCHMARKS.md: the machine, and the table of figures against their targets."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import access_cost
from compare import rows as compare_rows
from figures import Figures, Plan
from redaction_cost import redaction_rows

__all__ = ["BEGIN", "END", "machine", "report"]

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def report(f: Figures, plan: Plan, command: str) -> str:
    v, t = f.values, f.text

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    small, large = plan.many_clients
    rows = [
        ("NOTIFY floor: `pg_notify` -> asyncpg listener callback", "reference", t["floor_notify"], ""),
        (
            "design floor: INSERT -> NOTIFY -> SELECT of that row on the listener (no server, no client)",
            "reference",
            t["floor_read"],
            "",
        ),
        (
            f"commit -> client-parsed latency, 1 client at {plan.latency_rate:g}/s",
            "p50 <= 1.5 ms and <= 5x floor p50; p99 <= 5 ms",
            t["one_client"],
            verdict(v["one_client"] <= 1.5 and v["one_client"] <= 5 * v["floor_notify"] and v["one_client_p99"] <= 5),
        ),
        (
            f"commit -> raw receive, {small} clients at {plan.latency_rate:g}/s",
            "p99 <= 20 ms, <= baseline",
            t[f"ours_{small}"],
            verdict(v[f"ours_{small}"] <= 20 and v[f"ours_{small}"] <= v[f"base_{small}"]),
        ),
        (f"baseline, {small} clients", "reference", t[f"base_{small}"], ""),
        (
            f"commit -> raw receive, {large} clients at {plan.latency_rate:g}/s",
            "p99 <= 100 ms, <= baseline",
            t[f"ours_{large}"],
            verdict(v[f"ours_{large}"] <= 100 and v[f"ours_{large}"] <= v[f"base_{large}"]),
        ),
        (f"baseline, {large} clients", "reference", t[f"base_{large}"], ""),
    ]
    if "statements_1" in v:
        worst = max(v[k] for k in v if k.startswith("statements_"))
        ratio = v[f"statements_{large}"] / v["statements_1"]
        rows.append(
            (
                f"database statements per event at 1 / {small} / {large} clients",
                "<= 1.0; 1000-client / 1-client <= 1.05",
                f"{t['statements_1']} / {t[f'statements_{small}']} / {t[f'statements_{large}']}",
                verdict(worst <= 1.0 and ratio <= 1.05),
            )
        )
    rows += [
        (
            f"floor: websockets `broadcast()` to {plan.fan_out_clients} clients, no database",
            "reference",
            t["floor_fan_out"],
            "",
        ),
        (
            f"sustained fan-out at {plan.fan_out_clients} clients ({plan.fan_out_rate:g} events/s offered)",
            ">= 150,000 frames/s and >= baseline",
            t["ours_fan_out"],
            verdict(v["ours_fan_out"] >= 150_000 and v["ours_fan_out"] >= v["base_fan_out"]),
        ),
        ("baseline fan-out, same load", "reference", t["base_fan_out"], ""),
        (
            f"backlog replay of {plan.replay_rows:,} rows to one resuming client",
            ">= 50,000 events/s; last 10% >= 0.9x first",
            t["replay"],
            verdict(v["replay"] >= 50_000 and v["replay_ratio"] >= 0.9),
        ),
        (
            f"live p99, {plan.live_clients} clients at 10/s, idle / during that replay",
            "during <= 2x idle",
            f"{t['live_idle']} / {t['live_replay']}",
            verdict(v["live_replay"] <= 2 * v["live_idle"]),
        ),
        (
            f"memory per idle connection at {plan.memory_connections:,} connections",
            "<= 32 KiB",
            t["memory"],
            verdict(v["memory"] <= 32),
        ),
        ("baseline memory per idle connection", "reference", t["base_memory"], ""),
    ]
    rows += [
        (
            f"insert throughput, triggers / plain table, {n} writer{'s' if n > 1 else ''}",
            ">= 0.8 at 1 writer" if n == 1 else "report",
            t[f"inserts_{n}"],
            verdict(v[f"inserts_{n}"] >= 0.8) if n == 1 else "",
        )
        for n in plan.insert_writers
    ]
    rows += [
        (
            "events missed under 8 writers, clients dropping and resuming",
            "ours 0",
            t["missed_ours"],
            verdict(v["missed_ours"] == 0 and "0 twice" in t["missed_ours"]),
        ),
        ("baseline, same (reconnect; it has no cursor)", "report", t["missed_base"], ""),
    ]
    rows += redaction_rows()
    rows += compare_rows(v, t, plan)
    rows += access_cost.rows(f)
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    return f"""{BEGIN}
Machine: {machine()}. Servers, load generator and Postgres share it.
Command: `{command}`; run on {time.strftime("%Y-%m-%d")}.

| figure | target | measured | |
|---|---|---|---|
{table}
{END}"""
