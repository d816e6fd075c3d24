"""Revocation on every replica (docs/60_ACCESS.md#revocation): two real `journal serve` processes on one journal;
`journal keys revoke` and `journal tokens revoke`, run as the operator runs them, close the sessions on both."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path

import asyncpg
import websockets

from .conftest import TOKEN, Client, Journal, write
from .tokens import SECRET, claims, make_key, sign

JOURNAL = str(Path(sys.executable).parent / "journal")


async def test_revocations_close_sessions_on_every_replica(
    db_url: str, conn: asyncpg.Connection, journal: Journal
) -> None:
    """A key's sessions on two server processes both close 4401 token_revoked after `journal keys revoke`; a JWT's
    after `journal tokens revoke`; a session with another credential on each stays up."""
    key = await make_key(db_url, "shared")
    jwt = sign(SECRET, claims(jti="replicated-1"))
    env = {"DATABASE_URL": db_url, "JOURNAL_TOKENS": TOKEN, "JOURNAL_JWT_SECRET": SECRET}
    with (
        journal("serve", "--port", "0", env=env) as first,
        journal("serve", "--port", "0", env=env) as second,
    ):
        ports = [cli.wait_for_line(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")[1] for cli in (first, second)]
        async with contextlib.AsyncExitStack() as stack:
            clients = {}
            for replica, port in zip("ab", ports, strict=True):
                for kind in ("key", "jwt", "other"):
                    socket = await stack.enter_async_context(websockets.connect(f"ws://127.0.0.1:{port}/ws"))
                    clients[f"{replica}_{kind}"] = Client(socket)
            for name, client in clients.items():
                credential = {"key": key, "jwt": jwt, "other": TOKEN}[name[2:]]
                await client.subscribe(token=credential, cursor=None)
            [event] = await write(conn)
            for client in clients.values():
                await client.events_through(event)  # every session is live on its replica

            revoked_at = time.monotonic()
            revoke = await asyncio.create_subprocess_exec(
                JOURNAL, "keys", "revoke", "shared", env={**os.environ, **env}
            )
            assert await revoke.wait() == 0
            closes = list(await asyncio.gather(clients["a_key"].closed(), clients["b_key"].closed()))
            key_s = time.monotonic() - revoked_at

            revoked_at = time.monotonic()
            revoke = await asyncio.create_subprocess_exec(
                JOURNAL, "tokens", "revoke", "replicated-1", env={**os.environ, **env}
            )
            assert await revoke.wait() == 0
            closes += await asyncio.gather(clients["a_jwt"].closed(), clients["b_jwt"].closed())
            jwt_s = time.monotonic() - revoked_at

            [later] = await write(conn)
            for name in ("a_other", "b_other"):
                [seen] = await clients[name].events_through(later)
                assert int(seen["id"]) == later
        assert first.interrupt() == 0
        assert second.interrupt() == 0
    assert [(code, [frame["code"] for frame in frames]) for code, frames in closes] == [(4401, ["token_revoked"])] * 4
    print(f"revocation reached both replicas: key {key_s:.3f} s, jti {jwt_s:.3f} s (command start included)")
