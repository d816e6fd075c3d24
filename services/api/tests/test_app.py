"""The app served by a real uvicorn (start-up failures are tested through the CLI, in test_cli.py)."""

from __future__ import annotations

import httpx

from journal_api.app import create_app

from .conftest import MakeSettings, Serve


async def test_healthz_says_ok(make_settings: MakeSettings, serve: Serve) -> None:
    """GET /healthz answers 200 with {"status": "ok"} while the app runs."""
    async with serve(create_app(make_settings())) as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
