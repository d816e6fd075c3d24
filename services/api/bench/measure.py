"""One benchmark run: every scenario in turn, on databases of its own, into :class:`Figures`."""

from __future__ import annotations

from pathlib import Path

import access_cost
import asyncpg
from compare import measure as measure_compare
from fanout import fan_out, floor_fan_out, memory_per_connection
from figures import Figures, Plan
from harness import baseline, create_database, database_dsn, ours, running, start_baseline, start_ours
from latency import StatementLog, clients_at_rate, floor_notify, floor_notify_then_read, one_parsing_client
from replay import missed_events, replay_with_live
from servers import BASELINE_SCHEMA
from writers import insert_throughput, load_rows

__all__ = ["measure"]


async def measure(server_url: str, plan: Plan, log: Path | None, work: Path) -> Figures:
    figures = Figures()
    admin = await asyncpg.connect(server_url)
    names = [await create_database(admin, server_url, None), await create_database(admin, server_url, BASELINE_SCHEMA)]
    dsn, base_dsn = (database_dsn(server_url, n) for n in names)
    statements = StatementLog(log)
    try:
        print("latency", flush=True)
        floor = await floor_notify(dsn, plan.latency_events, plan.latency_rate)
        figures.set("floor_notify", floor.p50_ms, floor.describe())
        design = await floor_notify_then_read(dsn, plan.latency_events, plan.latency_rate)
        figures.set("floor_read", design.p50_ms, design.describe())
        if log is not None:
            await admin.execute(f"ALTER DATABASE {names[0]} SET log_statement = 'all'")
        async with running(start_ours(dsn, work)) as server:
            one, statements_per_event = await one_parsing_client(
                dsn, server.port, plan.latency_events, plan.latency_rate, statements
            )
            figures.set("one_client", one.p50_ms, f"{one.describe()}; {one.p50_ms / floor.p50_ms:.1f}x the floor's p50")
            figures.values["one_client_p99"] = one.p99_ms
            per_event: dict[int, float] = {}
            if statements_per_event is not None:
                per_event[1] = statements_per_event
            for n in plan.many_clients:
                lat, server_cpu, gen_cpu, statements_per_event = await clients_at_rate(
                    dsn, server, ours(server.port), n, plan.latency_rate, plan.latency_events, statements
                )
                figures.set(
                    f"ours_{n}",
                    lat.p99_ms,
                    f"{lat.describe()}; CPU server {server_cpu:.2f} s, generator {gen_cpu:.2f} s",
                )
                if statements_per_event is not None:
                    per_event[n] = statements_per_event
        if log is not None:
            await admin.execute(f"ALTER DATABASE {names[0]} RESET log_statement")
        for n, value in per_event.items():
            figures.set(f"statements_{n}", value, f"{value:.3f}")
        async with running(start_baseline(base_dsn, work)) as server:
            for n in plan.many_clients:
                lat, server_cpu, gen_cpu, _ = await clients_at_rate(
                    base_dsn, server, baseline(server.port), n, plan.latency_rate, plan.latency_events
                )
                figures.set(
                    f"base_{n}",
                    lat.p99_ms,
                    f"{lat.describe()}; CPU server {server_cpu:.2f} s, generator {gen_cpu:.2f} s",
                )

        print("fan-out", flush=True)
        clients, rate, seconds = plan.fan_out_clients, plan.fan_out_rate, plan.fan_out_seconds
        floor_out = await floor_fan_out(clients, seconds, work)
        figures.set(
            "floor_fan_out",
            floor_out["frames_s"],
            f"{floor_out['frames_s']:,.0f} frames/s (generator CPU {floor_out['generator_cpu_s']:.1f} s)",
        )
        for name, starter, target, db in (
            ("ours", lambda: start_ours(dsn, work), ours, dsn),
            ("base", lambda: start_baseline(base_dsn, work), baseline, base_dsn),
        ):
            async with running(starter()) as server:
                out = await fan_out(db, server, target(server.port), clients, rate, seconds)
            figures.set(
                f"{name}_fan_out",
                out["frames_s"],
                f"{out['frames_s']:,.0f} frames/s ({out['delivered']:,} of {out['expected']:,} delivered in "
                f"{out['span_s']:.1f} s; last {out['lag_s']:.2f} s after the last write; CPU server "
                f"{out['server_cpu_s']:.1f} s, generator {out['generator_cpu_s']:.1f} s)",
            )

        print("memory", flush=True)
        async with running(start_ours(dsn, work)) as server:
            mem = await memory_per_connection(server, ours(server.port), plan.memory_connections)
        figures.set(
            "memory",
            mem["per_connection_kib"],
            f"{mem['per_connection_kib']:.1f} KiB ({plan.memory_connections:,} subscribed idle connections; "
            f"server RSS {mem['before_kib'] / 1024:.0f} -> {mem['after_kib'] / 1024:.0f} MiB)",
        )
        async with running(start_baseline(base_dsn, work)) as server:
            mem = await memory_per_connection(server, baseline(server.port), plan.memory_connections)
        figures.set("base_memory", mem["per_connection_kib"], f"{mem['per_connection_kib']:.1f} KiB")

        print("inserts", flush=True)
        # No stream server runs here: this is what the triggers cost the writers. Plain and journal runs alternate
        # in short rounds, so drift in this shared machine's speed falls on both alike.
        for n in plan.insert_writers:
            rates = {"plain_events": 0.0, "events": 0.0}
            for turn in range(plan.insert_rounds):  # each table first every other round, as writer_cost.rounds
                for table in list(rates) if turn % 2 == 0 else list(rates)[::-1]:
                    rates[table] += await insert_throughput(dsn, table, n, plan.insert_seconds)
            plain, journal = rates["plain_events"] / plan.insert_rounds, rates["events"] / plan.insert_rounds
            figures.set(
                f"inserts_{n}", journal / plain, f"{journal / plain:.2f} ({journal:,.0f} vs {plain:,.0f} rows/s)"
            )

        await measure_compare(admin, server_url, plan, log, work, names, figures.set)

        print("missed events", flush=True)
        for name, starter, db, resume in (
            ("ours", lambda: start_ours(dsn, work), dsn, True),
            ("base", lambda: start_baseline(base_dsn, work), base_dsn, False),
        ):
            async with running(starter()) as server:
                missed = await missed_events(
                    db, server.port, resume=resume, writers=8, seconds=plan.missed_seconds, clients=10
                )
            figures.set(
                f"missed_{name}",
                missed["missed"],
                f"{missed['missed']:,} missed, {missed['duplicated']} twice ({missed['events']:,} events, 10 clients)",
            )

        print("replay", flush=True)
        # a journal of its own: exactly `rows` events, loaded through the real triggers
        names.append(await create_database(admin, server_url, None))
        replay_dsn = database_dsn(server_url, names[-1])
        load_rate = await load_rows(replay_dsn, plan.replay_rows)
        print(f"  loaded {plan.replay_rows:,} rows at {load_rate:,.0f} rows/s", flush=True)
        async with running(start_ours(replay_dsn, work)) as server:
            idle = await clients_at_rate(replay_dsn, server, ours(server.port), plan.live_clients, 10, 100)
            replay = await replay_with_live(replay_dsn, server, plan.replay_rows, plan.live_clients)
        figures.set(
            "replay",
            replay["rate"],
            f"{replay['rate']:,.0f} events/s over {replay['events']:,} events; first 10% "
            f"{replay['first_tenth']:,.0f}/s, last 10% {replay['last_tenth']:,.0f}/s (CPU server "
            f"{replay['server_cpu_s']:.1f} s, generator {replay['generator_cpu_s']:.1f} s)",
        )
        figures.values["replay_ratio"] = replay["last_tenth"] / replay["first_tenth"]
        figures.set("live_idle", idle[0].p99_ms, idle[0].describe())
        figures.set(
            "live_replay",
            replay["live_p99_ms"],
            f"p50 {replay['live_p50_ms']:.2f} ms, p99 {replay['live_p99_ms']:.2f} ms "
            f"(n={replay['live_n']:.0f}, {replay['live_missing']:.0f} not delivered)",
        )
        print("access", flush=True)
        await access_cost.measure(figures, dsn, work, start_ours, plan.quick)
    finally:
        for name in names:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    return figures
