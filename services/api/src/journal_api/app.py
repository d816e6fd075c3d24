"""The ASGI application: routes, the resources its lifespan owns, and the uvicorn configuration it needs."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from journal_api.hub import DATABASE_ERRORS, Hub
from journal_api.settings import Settings
from journal_api.transport import CLOSE_GRACE_S, JournalWebSocketProtocol
from journal_api.ws import Journal, websocket_endpoint

__all__ = ["GC_THRESHOLDS", "MAX_MESSAGE_BYTES", "create_app", "server_config", "tune_gc"]

MAX_MESSAGE_BYTES = 65_536  # the largest message a client may send; larger ones are closed 1009
READY_TIMEOUT_S = 2.0  # /readyz: a database slower than this to answer SELECT 1 counts as unavailable

GC_THRESHOLDS = (50_000, 50, 100)
"""The cyclic collector's thresholds for a serving process (Python's defaults: 700, 10, 10)."""


def tune_gc() -> None:
    """Make the collector's passes rare, for the process that serves (not the app: the process is the caller's).

    Each connection keeps about twenty suspended coroutines (uvicorn, Starlette's layers, the session's tasks),
    so 1,000 connections are ~190,000 objects, and with the default thresholds a full pass over them stopped every
    session for up to 130 ms, several times a minute under load (docs/BENCHMARKS.md, "garbage collector"). Nearly
    everything the stream allocates per event is freed by reference counting, so collecting less often costs a
    little memory, not correctness."""
    gc.set_threshold(*GC_THRESHOLDS)


async def _healthz(request: Request) -> JSONResponse:
    """The process is up and serving."""
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> JSONResponse:
    """The database answers and the hub listens: new clients can be served (docs/20_EVENT_JOURNAL.md#running-it)."""
    journal: Journal = request.app.state.journal
    failing = [] if journal.hub.listening else ["listener"]
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await journal.pool.fetchval("SELECT 1")
    except DATABASE_ERRORS:
        failing.insert(0, "database")
    if failing:
        return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
    return JSONResponse({"status": "ready"})


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool connections are handed back as they are: the journal's statements leave no session state (no LISTEN,
    no session locks, cursors or settings), and asyncpg's default reset costs a statement per acquire, which on
    the hub's fetch path is a statement per event (docs/BENCHMARKS.md)."""


def _unusable(exc: BaseException) -> RuntimeError:
    # The DSN is not repeated: it may hold a password.
    if isinstance(exc, asyncpg.UndefinedTableError):
        return RuntimeError(f"the journal's tables are missing ({exc}); run `journal migrate` first")
    return RuntimeError(
        f"cannot connect to the journal database ({type(exc).__name__}: {exc}); "
        "check DATABASE_URL and that Postgres is running"
    )


def create_app(settings: Settings) -> Starlette:
    """The journal's app: ``/healthz``, ``/readyz`` and ``/ws``, connected to the database for as long as it runs."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dsn = settings.database_url.get_secret_value()
        # Fail at start-up, not on the first request, when the journal cannot be read.
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=10,
                command_timeout=30,
                server_settings={"application_name": "journal-api"},
                reset=_keep_session,
            )
        except DATABASE_ERRORS as exc:
            raise _unusable(exc) from exc
        hub = Hub(dsn, buffer_rows=settings.buffer_rows, check_interval_s=settings.check_interval_s)
        try:
            await hub.start()
        except DATABASE_ERRORS as exc:
            await pool.close()
            raise _unusable(exc) from exc
        app.state.journal = Journal(settings=settings, pool=pool, hub=hub)
        try:
            yield
        finally:
            await hub.close()
            await pool.close()

    return Starlette(
        routes=[
            Route("/healthz", _healthz),
            Route("/readyz", _readyz),
            WebSocketRoute("/ws", websocket_endpoint),
        ],
        lifespan=lifespan,
    )


def server_config(app: Starlette, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """The uvicorn settings the protocol relies on: a 64 KiB message limit (1009 beyond it), no per-message
    deflate, and the sans-I/O websockets implementation, whose sends wait for the client (backpressure), in the
    journal's variant that never logs frames and drops stalled clients."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="asyncio",  # uvloop measured no better here (docs/BENCHMARKS.md, "uvloop")
        ws=JournalWebSocketProtocol,
        ws_max_size=MAX_MESSAGE_BYTES,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=int(CLOSE_GRACE_S * 2),  # a backstop: stalled clients are aborted before
        **options,
    )
