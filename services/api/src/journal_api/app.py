"""The ASGI application: routes, and the resources its lifespan owns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["create_app"]


async def _healthz(request: Request) -> JSONResponse:
    """The process is up and serving."""
    return JSONResponse({"status": "ok"})


def create_app(dsn: str) -> Starlette:
    """The journal's app, connected to the database at ``dsn`` for as long as it runs."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Fail at start-up, not on the first request, when the database cannot be reached. The DSN is not
        # repeated: it may hold a password.
        try:
            app.state.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        except (OSError, asyncpg.PostgresError) as exc:
            raise RuntimeError(
                f"cannot connect to the journal database ({type(exc).__name__}: {exc}); "
                "check DATABASE_URL and that Postgres is running"
            ) from exc
        try:
            yield
        finally:
            await app.state.pool.close()

    return Starlette(routes=[Route("/healthz", _healthz)], lifespan=lifespan)
