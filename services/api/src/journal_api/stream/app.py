"""The ASGI application: routes, the resources its lifespan owns, and the uvicorn configuration it needs."""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from journal_api.access.credentials import Authenticator
from journal_api.access.keys import CONTROL_CHANNEL
from journal_api.access.revocation import Revocations
from journal_api.stream.hub import Hub
from journal_api.stream.listener import DATABASE_ERRORS
from journal_api.stream.logs import LogFormat, log_config
from journal_api.stream.metrics import Metrics
from journal_api.stream.protocol import ProtocolError, bearer_token
from journal_api.stream.settings import Settings
from journal_api.stream.transport import CLOSE_GRACE_S, JournalWebSocketProtocol
from journal_api.stream.ws import Journal, websocket_endpoint

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


_CONSOLE = Path(__file__).parent / "console"
_CONSOLE_FILES = {"console.js": "text/javascript", "console.css": "text/css"}
_CONSOLE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def _console(request: Request) -> Response:
    """The operator console: one static page and its script and style (docs/40_CONSOLE.md)."""
    name = request.path_params.get("name", "index.html")
    media_type = "text/html" if name == "index.html" else _CONSOLE_FILES.get(name)
    if media_type is None:
        return PlainTextResponse("not found", status_code=404)
    headers = {
        "Content-Security-Policy": _CONSOLE_POLICY,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return Response(_console_file(name), media_type=media_type, headers=headers)


@functools.cache
def _console_file(name: str) -> bytes:
    """Read once per process: the files ship inside the package and never change while it runs."""
    return (_CONSOLE / name).read_bytes()


async def _metrics(request: Request) -> Response:
    """Prometheus' text format; a credential whose grant has ``metrics`` unless JOURNAL_METRICS_PUBLIC
    (docs/50_OPERATIONS.md)."""
    journal: Journal = request.app.state.journal
    if not journal.settings.metrics_public:
        token = bearer_token(request.headers.get("authorization")) or ""  # an empty one is never valid
        try:
            credential = await journal.authenticator.authenticate(token)
        except ProtocolError:
            body = {"error": "unauthorized", "message": 'send "Authorization: Bearer <credential with metrics>"'}
            return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if not credential.grant.metrics:
            body = {"error": "forbidden", "message": "this credential's grant has no metrics; use one that has"}
            return JSONResponse(body, status_code=403)
    return Response(journal.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool connections are handed back as they are: the journal's statements leave no session state (no LISTEN,
    no session locks, cursors or settings), and asyncpg's default reset costs a statement per acquire, which on
    the hub's fetch path is a statement per event (docs/BENCHMARKS.md)."""


def _unusable(exc: BaseException) -> RuntimeError:
    # The DSN is not repeated: it may hold a password. (A journal that is missing or not migrated is found by the
    # hub's check_horizon, which says so.)
    return RuntimeError(
        f"cannot connect to the journal database ({type(exc).__name__}: {exc}); "
        "check DATABASE_URL and that Postgres is running"
    )


def create_app(settings: Settings) -> Starlette:
    """The journal's app: ``/healthz``, ``/readyz`` and ``/ws``, connected to the database for as long as it runs."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dsn = settings.database_url.get_secret_value()
        metrics = Metrics()
        hub = Hub(
            dsn,
            buffer_rows=settings.buffer_rows,
            check_interval_s=settings.check_interval_s,
            held_log_s=settings.held_log_s,
            metrics=metrics,
        )
        metrics.hub = hub
        # Fail at start-up, not on the first request, when the journal cannot be read.
        pool: asyncpg.Pool | None = None
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=10,
                command_timeout=30,
                server_settings={"application_name": "journal-api", "default_transaction_isolation": "read committed"},
                reset=_keep_session,
            )
            authenticator = Authenticator(settings, pool)
            await authenticator.start()  # the JWKS, and that some credential is configured
            revocations = Revocations(pool)
            hub.listen(CONTROL_CHANNEL, revocations.on_control)
            await hub.start()
        except BaseException as exc:
            if pool is not None:
                await pool.close()
            if isinstance(exc, DATABASE_ERRORS):
                raise _unusable(exc) from exc
            raise  # HorizonUnusableError, a JWKS or credential problem: its message says what to change
        app.state.journal = Journal(
            settings=settings,
            pool=pool,
            hub=hub,
            metrics=metrics,
            authenticator=authenticator,
            revocations=revocations,
        )
        try:
            yield
        finally:
            await hub.close()
            await revocations.close()
            await pool.close()

    return Starlette(
        routes=[
            Route("/healthz", _healthz),
            Route("/readyz", _readyz),
            Route("/metrics", _metrics),
            Route("/console", _console),
            Route("/console/{name}", _console),
            WebSocketRoute("/ws", websocket_endpoint),
        ],
        lifespan=lifespan,
    )


def server_config(
    app: Starlette, *, host: str, port: int, log_format: LogFormat = "text", **options: Any
) -> uvicorn.Config:
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
        log_config=log_config(log_format),
        **options,
    )
