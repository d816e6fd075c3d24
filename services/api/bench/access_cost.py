"""What access control costs (issue 13, docs/60_ACCESS.md#cost): subscribe latency with each kind of credential,
database transactions per event with scoped keys, and how long a revocation takes to close a live session.

    uv run --group bench python services/api/bench/access_cost.py [--quick]

Standalone, or from run.py (``measure`` and ``rows``), against a database made for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import websockets
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from journal_api.access.grants import Grant
from journal_api.access.keys import create_key, revoke_key
from journal_api.journal.embedded import EmbeddedPostgres
from journal_api.journal.migrations import apply_migrations, load_migrations

ROOT = Path(__file__).resolve().parents[3]
SECRET = "bench-jwt-secret-" + uuid.uuid4().hex
OPERATOR = "bench-token-" + uuid.uuid4().hex
# A backend reports its transaction counts to pg_stat_database at most once a second while busy, and an idle one
# within 10 s (PGSTAT_IDLE_INTERVAL): every reading waits that out, or it would count another phase's transactions.
_STATS_SETTLE_S = 11.0
KINDS = ("operator token", "API key", "JWT HS256", "JWT RS256 with jti")


def _p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


async def _subscribe_s(url: str, token: str) -> float:
    """Seconds from sending the subscribe to receiving ready (the handshake before it is not access control's)."""
    async with websockets.connect(url) as socket:
        started = time.perf_counter()
        await socket.send(json.dumps({"op": "subscribe", "token": token}))
        frame = json.loads(await socket.recv())
        elapsed = time.perf_counter() - started
    if frame["op"] != "ready":
        raise RuntimeError(f"subscribe refused: {frame}")
    return elapsed


async def _transactions(conn: asyncpg.Connection) -> int:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    count: int = await conn.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
    )
    return count


async def _per_event(conn: asyncpg.Connection, url: str, token: str, sessions: int, events: int) -> float:
    """Database transactions per event while ``sessions`` subscribed with ``token`` receive ``events``."""
    sockets = [await websockets.connect(url) for _ in range(sessions)]
    try:
        for socket in sockets:
            await socket.send(json.dumps({"op": "subscribe", "token": token}))
            while json.loads(await socket.recv())["op"] != "live":
                pass
        await asyncio.sleep(_STATS_SETTLE_S)  # the subscribes' transactions are counted before the first reading
        before = await _transactions(conn)
        last = 0
        for _ in range(events):
            last = await conn.fetchval(
                "INSERT INTO events (type, symbol) VALUES ('trade.filled', 'BTC-USD') RETURNING id"
            )
            await asyncio.sleep(0.002)
        for socket in sockets:
            while True:
                frame = json.loads(await socket.recv())
                if frame["op"] == "event" and int(frame["cursor"]) >= last:
                    break
        await asyncio.sleep(_STATS_SETTLE_S)
        return (await _transactions(conn) - before) / events
    finally:
        for socket in sockets:
            await socket.close()


async def _revocation_s(dsn: str, url: str, rounds: int) -> list[float]:
    """Seconds from the commit of a revocation to the close frame on a live session using the key."""
    conn = await asyncpg.connect(dsn)
    samples = []
    try:
        for n in range(rounds):
            key = await create_key(conn, f"revoked-{n}", Grant(), None)
            async with websockets.connect(url) as socket:
                await socket.send(json.dumps({"op": "subscribe", "token": key}))
                while json.loads(await socket.recv())["op"] != "live":
                    pass
                started = time.perf_counter()
                await revoke_key(conn, f"revoked-{n}")
                with_error = json.loads(await socket.recv())
                await socket.wait_closed()
                samples.append(time.perf_counter() - started)
            if with_error.get("code") != "token_revoked" or socket.close_code != 4401:
                raise RuntimeError(f"revocation closed with {socket.close_code} {with_error}")
    finally:
        await conn.close()
    return samples


async def measure(figures: Any, dsn: str, work: Path, start_ours: Any, quick: bool) -> None:
    """Set the access figures on ``figures`` (run.py's ``Figures``), with our server started by ``start_ours``."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = work / "jwks.json"
    jwks.write_text(json.dumps({"keys": [RSAAlgorithm.to_jwk(private.public_key(), as_dict=True) | {"kid": "k1"}]}))
    conn = await asyncpg.connect(dsn)
    try:
        key = await create_key(conn, "bench", Grant(channels=("trades",), symbols=("BTC-USD",)), None)
        exp = int(time.time()) + 3600
        claims = {"sub": "bench", "aud": "journal", "exp": exp, "journal": {"channels": ["trades"]}}
        credentials = {
            "operator token": OPERATOR,
            "API key": key,
            "JWT HS256": jwt.encode(claims, SECRET, algorithm="HS256"),
            "JWT RS256 with jti": jwt.encode(claims | {"jti": "j1"}, private, algorithm="RS256", headers={"kid": "k1"}),
        }
        settings = {"JOURNAL_TOKENS": OPERATOR, "JOURNAL_JWT_SECRET": SECRET, "JOURNAL_JWKS_URL": str(jwks)}
        server = start_ours(dsn, work, **settings)
        try:
            url = f"ws://127.0.0.1:{server.port}/ws"
            rounds = 50 if quick else 400
            samples: dict[str, list[float]] = {name: [] for name in credentials}
            for token in credentials.values():  # warm-up: the first connection pays for imports and the pool
                await _subscribe_s(url, token)
            for _ in range(rounds):  # interleaved, so drift in the machine's load falls on every kind alike
                for name, token in credentials.items():
                    samples[name].append(await _subscribe_s(url, token))
            base = _p50_ms(samples["operator token"])
            for name, values in samples.items():
                p50 = _p50_ms(values)
                figures.set(
                    f"access_subscribe_{name}",
                    p50 - base,
                    f"p50 {p50:.2f} ms (+{p50 - base:.2f} ms over the operator token), "
                    f"p99 {sorted(values)[int(0.99 * len(values))] * 1e3:.2f} ms (n={len(values)})",
                )
            sessions, events = (10, 100) if quick else (50, 500)
            per_token = await _per_event(conn, url, OPERATOR, sessions, events)
            per_key = await _per_event(conn, url, key, sessions, events)
            figures.set(
                "access_per_event",
                per_key - per_token,
                f"{per_key:.2f} transactions per event with {sessions} key sessions, {per_token:.2f} with "
                f"{sessions} operator-token sessions ({events} events each)",
            )
            revocations = await _revocation_s(dsn, url, 5 if quick else 20)
            figures.set(
                "access_revocation",
                max(revocations),
                f"p50 {_p50_ms(revocations):.1f} ms, max {max(revocations) * 1e3:.1f} ms (n={len(revocations)})",
            )
        finally:
            server.stop()
    finally:
        await conn.close()


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def rows(f: Any) -> list[tuple[str, str, str, str]]:
    """The report's rows for the figures :func:`measure` set."""
    v, t = f.values, f.text
    subscribe = []
    for name in KINDS:
        key = f"access_subscribe_{name}"
        if name == KINDS[0]:
            subscribe.append((f"subscribe to ready with {name}", "reference", t[key], ""))
        else:
            subscribe.append((f"subscribe to ready with {name}", "<= +1 ms p50", t[key], _verdict(v[key] <= 1)))
    return [
        *subscribe,
        ("database transactions per event, key sessions minus token sessions", "0", t["access_per_event"],
         _verdict(abs(v["access_per_event"]) < 0.05)),
        ("revocation commit -> close frame on a live session", "<= 2 s", t["access_revocation"],
         _verdict(v["access_revocation"] <= 2)),
    ]  # fmt: skip


def main() -> None:
    """Run only these figures, on an embedded Postgres, and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from figures import Figures  # here: measure.py imports this module too
    from harness import start_ours

    work = Path(tempfile.mkdtemp(prefix="journal-access-bench-"))
    embedded = EmbeddedPostgres(work / "pg", on_stop="delete")

    async def go() -> Figures:
        conn = await asyncpg.connect(embedded.dsn)
        try:
            await apply_migrations(conn, load_migrations(ROOT / "migrations"))
        finally:
            await conn.close()
        figures = Figures()
        await measure(figures, embedded.dsn, work, start_ours, args.quick)
        return figures

    try:
        figures = asyncio.run(go())
    finally:
        embedded.stop()
    for row in rows(figures):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
