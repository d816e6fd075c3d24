"""The ``journal-engine`` command: ``demo`` writes a realistic event mix until stopped."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from journal_engine.demo import DemoPublisher

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``journal-engine`` command line; return the exit status."""
    args = _parser().parse_args(argv)
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        print(
            "journal-engine demo: DATABASE_URL is not set: point it at the journal's database",
            file=sys.stderr,
        )
        return 2
    publisher = DemoPublisher(dsn, rate=args.rate, seed=args.seed)
    print(f"writing about {args.rate:g} events/s (Ctrl-C to stop)", flush=True)
    try:
        asyncio.run(publisher.run(args.count))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    print(f"wrote {publisher.written} events", flush=True)
    return 0


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of events per second") from None
    if not 0.1 <= rate <= 10_000:
        raise argparse.ArgumentTypeError(f"rate must be between 0.1 and 10000 events per second, got {text}")
    return rate


def _count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"count must be a whole number of events, 1 or more, got {text!r}")
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="journal-engine", description="Publisher stub for the event journal.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="write a realistic event mix to DATABASE_URL until stopped")
    demo.add_argument("--rate", type=_rate, default=5.0, help="events per second (0.1 to 10000; default 5)")
    demo.add_argument("--count", type=_count, default=None, help="stop after this many events")
    demo.add_argument("--seed", type=int, default=None, help="make the mix reproducible")
    return parser
