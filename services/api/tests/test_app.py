"""The app served by a real uvicorn (start-up failures are tested through the CLI, in test_cli.py)."""

from __future__ import annotations

import gc

import httpx

from journal_api.stream.app import GC_THRESHOLDS, create_app, tune_gc

from .conftest import MakeSettings, Serve


async def test_healthz_says_ok(make_settings: MakeSettings, serve: Serve) -> None:
    """GET /healthz answers 200 with {"status": "ok"} while the app runs."""
    async with serve(create_app(make_settings())) as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_serving_process_collects_garbage_rarely() -> None:
    """`journal serve` tunes the cyclic collector so full passes over every connection's objects are rare."""
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert all(tuned >= default for tuned, default in zip(GC_THRESHOLDS, (700, 10, 10), strict=True))
    finally:
        gc.set_threshold(*before)


async def test_readyz_says_ready_while_the_database_and_listener_are_up(
    make_settings: MakeSettings, serve: Serve
) -> None:
    """GET /readyz answers 200 {"status": "ready"} when the database answers and the hub listens."""
    async with serve(create_app(make_settings())) as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})
