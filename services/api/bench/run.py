"""The stream's benchmark (issue 4): our server side by side with the floor of this machine and a broadcaster
relay, in one run. Writes the measured part of docs/BENCHMARKS.md (between its ``bench:begin``/``bench:end``
markers; the rest of that file is prose about these numbers).

    uv run --group bench python services/api/bench/run.py [--quick] [--out docs/BENCHMARKS.md]

Every server runs as its own process; clients run in worker processes of the load generator (loadgen.py); the
writers run here. All of them share one clock (``time.perf_counter``, CLOCK_MONOTONIC).

This file is the entry point; the run is in measure.py, its scenarios in latency.py, fanout.py, replay.py and
writers.py, the servers and databases in harness.py, the figures and plan in figures.py, the table in report.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from figures import Plan
from measure import measure
from report import BEGIN, END, report

from journal_api.journal.embedded import EmbeddedPostgres

__all__ = ["main"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run (small numbers)")
    parser.add_argument("--out", type=Path, help="replace the measured part of this file (default: print it)")
    args = parser.parse_args()
    command = "make bench" + ("-quick" if args.quick else "")
    plan = Plan(args.quick)
    work = Path(tempfile.mkdtemp(prefix="journal-bench-"))
    server_url = os.environ.get("DATABASE_URL")
    embedded = None
    if not server_url:
        embedded = EmbeddedPostgres(work / "pg", on_stop="delete")
        server_url = embedded.dsn
    try:
        figures = asyncio.run(measure(server_url, plan, embedded.log if embedded else None, work))
    finally:
        if embedded is not None:
            embedded.stop()
    text = report(figures, plan, command)
    if args.out:
        old = args.out.read_text()
        args.out.write_text(old[: old.index(BEGIN)] + text + old[old.index(END) + len(END) :])
        print(f"wrote {args.out}")
    print(text)


if __name__ == "__main__":
    main()
