"""/console with tokens that expire (docs/40_CONSOLE.md#token), in a real headless Chromium: the page asks for a
new token on `expiring`, renews in-band, and after a token_expired close asks again and resumes from its cursor."""

from __future__ import annotations

import time

import asyncpg
from playwright.async_api import expect

from .conftest import StartServer, write
from .test_console import TOKEN_KEY, console
from .tokens import SECRET, claims, sign

EXPIRING = {"jwt_secret": SECRET, "token_expiring_s": 60, "token_grace_s": 0.2, "jwt_leeway_s": 0}


def token(seconds: float, sub: str = "alice") -> str:
    return sign(SECRET, claims(exp=int(time.time() + seconds), sub=sub))


async def test_the_console_asks_for_a_new_token_and_renews_in_band(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """`expiring` shows #renew; the pasted token goes out as auth on the open connection; auth_ok hides the form
    and keeps the new token; rows keep coming on the same connection past the old token's expiry."""
    new = token(600)
    async with journal_server(**EXPIRING) as server, console(server.base) as tab:
        await tab.open()
        old, old_exp = token(6), time.time() + 6  # made now: a loaded machine may take seconds to get here
        await tab.sign_in(old)
        await tab.state("live")
        await expect(tab.page.locator("#renew")).to_be_visible()
        await expect(tab.page.locator("#renew-note")).to_contain_text("your token expires at")
        await tab.page.fill("#new-token", new)
        await tab.page.click("#renew-submit")
        await expect(tab.page.locator("#renew")).to_be_hidden()
        assert await tab.stored("sessionStorage", TOKEN_KEY) == new
        await tab.page.wait_for_function(f"() => Date.now() / 1000 > {old_exp + 0.2 + 0.5}")
        written = await write(conn, 2)
        assert (await tab.rows_through(written[-1]))[-2:] == written
        await tab.state("live")
    assert len(tab.sockets) == 1
    assert [message["op"] for message in tab.sent] == ["subscribe", "auth"]
    assert tab.sent[1] == {"op": "auth", "token": new}


async def test_without_a_renewal_the_console_stops_asks_for_a_token_and_resumes(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """At expiry plus grace the server closes 4401 token_expired: the page stops, drops the token, shows the login
    form; a new token resumes from the saved cursor, so the rows written meanwhile appear and none is lost."""
    async with journal_server(**EXPIRING) as server, console(server.base) as tab:
        await tab.open()
        await tab.sign_in(token(4))  # made now: a loaded machine may take seconds to get here
        await tab.state("live")
        first = await write(conn, 1)
        await tab.rows_through(first[0])
        await tab.state("stopped")
        await expect(tab.page.locator("#status")).to_contain_text("the credential expired")
        await expect(tab.page.locator("#status")).to_contain_text("(4401)")
        await expect(tab.page.locator("#login")).to_be_visible()
        await expect(tab.page.locator("#renew")).to_be_hidden()
        assert await tab.stored("sessionStorage", TOKEN_KEY) is None
        meanwhile = await write(conn, 2)
        await tab.sign_in(token(600))
        assert await tab.rows_through(meanwhile[-1]) == first + meanwhile
    assert first[0] <= int(tab.subscribes[1]["cursor"]) < meanwhile[0]
