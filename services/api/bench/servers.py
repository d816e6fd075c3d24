"""The benchmark's two reference servers, each run as its own process (it prints ``port <n>`` once listening).

- ``baseline --dsn DSN``: the usual Python relay, a Starlette app on ``encode/broadcaster``'s postgres backend.
  A trigger (:data:`BASELINE_SCHEMA`) NOTIFYs each new row as JSON on channel ``journal``; every WebSocket client
  subscribes to that channel and is sent each notification's text. uvicorn runs with its default settings.
- ``floor --clients N --duration S``: no database and no framework: once ``N`` clients are connected, one process
  sends an event-sized frame to all of them, as fast as websockets' own ``broadcast()`` can, for ``S`` seconds,
  then prints ``sent <count>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from broadcaster import Broadcast
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.server import ServerConnection, broadcast, serve

__all__ = ["BASELINE_SCHEMA", "FLOOR_EVENT"]

BASELINE_SCHEMA = """
CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    ts          timestamptz NOT NULL DEFAULT now(),
    type        text NOT NULL,
    level       text NOT NULL DEFAULT 'info',
    public_safe boolean NOT NULL DEFAULT false,
    symbol      text,
    trade_id    text,
    payload     jsonb NOT NULL DEFAULT '{}'
);
CREATE FUNCTION notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('journal', row_to_json(NEW)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER notify_row AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION notify_row();
"""

FLOOR_EVENT = {
    "id": "0",
    "ts": "2026-11-26T10:00:00.000000+00:00",
    "type": "trade.filled",
    "channel": "trades",
    "level": "info",
    "public_safe": False,
    "symbol": "BTC-USD",
    "trade_id": None,
    "payload": {"side": "buy", "quantity": 0.5, "price": 97012.5, "venue": "sim", "note": "x" * 110},
}


def baseline_app(dsn: str) -> Starlette:
    broadcast_ = Broadcast(dsn)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The channel is subscribed once, at start-up: broadcaster subscribes its backend on a channel's first
        # subscriber, and a burst of first subscribers races (each calls LISTEN on the one connection, and
        # each replaces the others' queues), which left all but one client without events in our first runs.
        async with broadcast_, broadcast_.subscribe(channel="journal"):
            yield

    async def relay(websocket: WebSocket) -> None:
        await websocket.accept()
        async with broadcast_.subscribe(channel="journal") as subscriber:
            async for event in subscriber:  # type: ignore[union-attr]
                await websocket.send_text(event.message)

    return Starlette(routes=[WebSocketRoute("/ws", relay)], lifespan=lifespan)


async def run_baseline(dsn: str) -> None:
    server = uvicorn.Server(uvicorn.Config(baseline_app(dsn), host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.05)
    print(f"port {server.servers[0].sockets[0].getsockname()[1]}", flush=True)
    await serving


async def run_floor(clients: int, duration_s: float) -> None:
    connections: set[ServerConnection] = set()
    everyone = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        connections.add(connection)
        await connection.send('{"op":"live"}')
        if len(connections) >= clients:
            everyone.set()
        await connection.wait_closed()
        connections.discard(connection)

    async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None, max_queue=None) as server:
        print(f"port {next(iter(server.sockets)).getsockname()[1]}", flush=True)
        await everyone.wait()
        loop = asyncio.get_running_loop()
        deadline, sent = loop.time() + duration_s, 0
        while loop.time() < deadline:
            sent += 1
            broadcast(connections, json.dumps({"op": "event", "cursor": str(sent), "event": FLOOR_EVENT}))
            # backpressure, as a real server must: let clients drain before buffering more
            if any(c.transport.get_write_buffer_size() > 262_144 for c in connections):
                await asyncio.sleep(0.001)
            else:
                await asyncio.sleep(0)
        print(f"sent {sent}", flush=True)
        await asyncio.Future()  # serve until killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("baseline").add_argument("--dsn", required=True)
    floor = commands.add_parser("floor")
    floor.add_argument("--clients", type=int, required=True)
    floor.add_argument("--duration", type=float, required=True)
    args = parser.parse_args()
    if args.command == "baseline":
        asyncio.run(run_baseline(args.dsn))
    else:
        asyncio.run(run_floor(args.clients, args.duration))


if __name__ == "__main__":
    main()
