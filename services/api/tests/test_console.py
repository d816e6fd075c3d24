"""/console in a real headless Chromium against the real server: live rows, exact resume, the channel filter, errors
and untrusted text (docs/40_CONSOLE.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import BrowserContext, Page, WebSocket, async_playwright, expect

from journal_api.stream.app import create_app

from .conftest import TOKEN, MakeSettings, Serve, StartServer, free_port, write

CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000  # every wait is for a condition; this only bounds how long a broken page is waited for
POSITION_KEY = "journal.console.position"
CHANNELS_KEY = "journal.console.channels"
TOKEN_KEY = "journal.console.token"

# Test instrumentation, injected by Playwright (outside the page's CSP): every status line the page showed, in order.
STATUS_LOG = """
window.statusLog = [];
new MutationObserver(() => {
  const status = document.getElementById("status");
  const line = status && `${status.dataset.state}: ${status.textContent}`;
  if (line && window.statusLog[window.statusLog.length - 1] !== line) {
    window.statusLog.push(line);
  }
}).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
"""

expect.set_options(timeout=WAIT_MS)


def chromium() -> str:
    """Debian's Chromium: the tests never download a browser."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "chromium is not installed: the console's tests need Debian's chromium; `make test` installs it "
            "(as root or with passwordless sudo), or run "
            "`sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium`",
            pytrace=False,
        )
    return path


@dataclass
class Console:
    """One browser tab on the console, with what it sent over its WebSockets and what went wrong in it."""

    context: BrowserContext
    page: Page
    base: str
    sockets: list[WebSocket] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # every message the page sent, in order
    problems: list[str] = field(default_factory=list)  # CSP violations and uncaught exceptions

    def watch(self) -> None:
        def on_socket(socket: WebSocket) -> None:
            self.sockets.append(socket)
            socket.on("framesent", lambda payload: self.sent.append(json.loads(payload)))

        self.page.on("websocket", on_socket)
        self.page.on(
            "console",
            lambda message: self.problems.append(message.text) if "Content Security Policy" in message.text else None,
        )
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))

    @property
    def subscribes(self) -> list[dict[str, Any]]:
        return [message for message in self.sent if message.get("op") == "subscribe"]

    async def open(self) -> None:
        await self.page.goto(f"{self.base}/console")

    async def sign_in(self, token: str = TOKEN) -> None:
        await self.page.fill("#token", token)
        await self.page.click("#connect")

    async def state(self, state: str) -> None:
        """Wait until the status line is in ``state``."""
        await expect(self.page.locator("#status")).to_have_attribute("data-state", state)

    async def statuses(self) -> list[str]:
        """Every status line shown since the page loaded, as ``state: text``."""
        lines: list[str] = await self.page.evaluate("window.statusLog")
        return lines

    async def status_shown(self, line: str) -> None:
        """Wait until the status line has shown ``line`` (``state: text``), however briefly."""
        await self.page.wait_for_function("(line) => window.statusLog.includes(line)", arg=line)

    async def ids(self) -> list[int]:
        """The ids of the table's rows, top to bottom."""
        ids: list[str] = await self.page.evaluate(
            "Array.from(document.querySelectorAll('#rows tr'), (row) => row.dataset.id)"
        )
        return [int(id_) for id_ in ids]

    async def rows_through(self, last_id: int) -> list[int]:
        """Wait until the newest row is ``last_id`` (ids arrive in order, so all before it are in); every row's id."""
        await self.page.wait_for_function(
            "(last) => document.querySelector('#rows tr:last-child')?.dataset.id === last", arg=str(last_id)
        )
        return await self.ids()

    async def stored(self, area: str, key: str) -> Any:
        text = await self.page.evaluate("([area, key]) => window[area].getItem(key)", [area, key])
        return None if text is None else json.loads(text) if area == "localStorage" else text


@asynccontextmanager
async def console(base: str, *, fake_clock: bool = False) -> AsyncIterator[Console]:
    """A headless Chromium of its own (launching one takes about half a second) with one tab on ``base``'s console,
    not yet loaded; at the end, the tab must have seen no CSP violation and no uncaught exception."""
    executable = chromium()  # in the test, not a fixture: a missing browser fails the test itself
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            context.set_default_timeout(WAIT_MS)
            await context.add_init_script(STATUS_LOG)
            if fake_clock:
                await context.clock.install()  # time flows as usual until the test moves it
            tab = Console(context=context, page=await context.new_page(), base=base)
            tab.watch()
            yield tab
            assert tab.problems == []
        finally:
            await browser.close()


class Gate:
    """A TCP proxy in front of the server that can stop passing bytes while every connection stays open: the
    network of a laptop that slept or a NAT that forgot, which neither end notices."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.passing = asyncio.Event()
        self.passing.set()
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """Accept connections for the duration; yield the proxy's base URL."""
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        try:
            yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        finally:
            server.close()
            self.passing.set()
            for writer in self._writers:
                writer.close()
            await asyncio.wait_for(asyncio.gather(*self._tasks), 30)
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writers.append(upstream_writer)
        await asyncio.gather(self._pump(reader, upstream_writer), self._pump(upstream_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65_536):
                await self.passing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()


async def epoch_of(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT epoch FROM journal_meta"))


async def test_events_written_after_the_page_connects_appear_as_rows(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """Signed in on a first visit, the page subscribes live from the head with the token in its first message
    (kept in sessionStorage only), and every event committed after that appears as a row, newest at the bottom."""
    await write(conn, 2)  # before the page: a first visit starts at the head, so these never show
    async with journal_server() as server, console(server.base) as tab:
        await tab.open()
        await tab.state("signed-out")
        await tab.sign_in()
        await tab.state("live")
        assert tab.subscribes == [{"op": "subscribe", "token": TOKEN}]
        ids = await write(conn, 3, type="trade.filled", symbol="BTC-USD", trade_id="T-1")
        assert await tab.rows_through(ids[-1]) == ids
        assert await tab.stored("localStorage", POSITION_KEY) == {"cursor": str(ids[-1]), "epoch": await epoch_of(conn)}
        assert await tab.stored("sessionStorage", TOKEN_KEY) == TOKEN
        local: str = await tab.page.evaluate("JSON.stringify(Object.entries(localStorage))")
        assert TOKEN not in local
        assert TOKEN not in tab.page.url
        assert await tab.page.input_value("#token") == ""
        await expect(tab.page.locator("#count")).to_have_text("3 rows (newest at the bottom, at most 1000)")
        await tab.page.click("#forget")
        await tab.state("signed-out")
        assert await tab.stored("sessionStorage", TOKEN_KEY) is None


async def test_the_table_keeps_the_newest_thousand_rows(conn: asyncpg.Connection, journal_server: StartServer) -> None:
    """1,005 events in one burst: the table holds exactly the newest 1,000, in order."""
    async with journal_server() as server, console(server.base) as tab:
        await tab.open()
        await tab.sign_in()
        await tab.state("live")
        ids = await write(conn, 1005)
        assert await tab.rows_through(ids[-1]) == ids[5:]


async def test_after_a_reload_the_page_shows_exactly_the_missed_events(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """The page goes away, events commit, the page comes back in the same tab: it subscribes with the cursor and
    epoch from localStorage and the token from sessionStorage, and shows the missed events, none skipped, none
    twice, then keeps going live. A plain reload shows nothing old again."""
    epoch = await epoch_of(conn)
    async with journal_server() as server, console(server.base) as tab:
        await tab.open()
        await tab.sign_in()
        await tab.state("live")
        seen = await write(conn, 3)
        assert await tab.rows_through(seen[-1]) == seen
        assert await tab.stored("localStorage", POSITION_KEY) == {"cursor": str(seen[-1]), "epoch": epoch}

        await tab.page.goto("about:blank")
        missed = await write(conn, 4, type="snapshot.portfolio")
        await tab.open()
        assert await tab.rows_through(missed[-1]) == missed
        assert tab.subscribes[-1] == {"op": "subscribe", "token": TOKEN, "cursor": str(seen[-1]), "epoch": epoch}
        await tab.state("live")
        after = await write(conn, 2)
        assert await tab.rows_through(after[-1]) == missed + after

        await tab.page.reload()
        await tab.state("live")
        assert tab.subscribes[-1]["cursor"] == str(after[-1])
        assert await tab.ids() == []
        last = await write(conn, 1)
        assert await tab.rows_through(last[-1]) == last
        assert len(tab.subscribes) == 3


async def test_a_restarted_server_is_resumed_exactly(conn: asyncpg.Connection, journal_server: StartServer) -> None:
    """The server shuts down (1012), is away (refused connections: 1006) and comes back at the same address: the
    page reconnects with backoff on its own and shows exactly the events committed meanwhile."""
    port = free_port()
    async with console(f"http://127.0.0.1:{port}") as tab:
        async with journal_server(port=port):
            await tab.open()
            await tab.sign_in()
            await tab.state("live")
            before = await write(conn, 2)
            assert await tab.rows_through(before[-1]) == before
        await tab.status_shown("reconnecting: reconnecting in 0.5 s: the server is restarting (1012)")
        await tab.status_shown("reconnecting: reconnecting in 1 s: no connection to the server (1006)")
        missed = await write(conn, 3)
        async with journal_server(port=port):
            assert await tab.rows_through(missed[-1]) == before + missed
            await tab.state("live")
            assert [message.get("cursor") for message in tab.subscribes] == [None, str(before[-1])]
            after = await write(conn, 1)
            assert await tab.rows_through(after[-1]) == before + missed + after
            await tab.page.click("#forget")  # so the page does not reconnect while this server shuts down


async def test_a_silent_connection_is_noticed_and_resumed(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """A connection that stops carrying bytes without closing: after 30 s of silence the page pings, 10 s later it
    gives up on that connection, reconnects and shows exactly the events it missed. The page's clock is moved
    forward; the network and the server run in real time."""
    async with journal_server() as server:
        gate = Gate(int(server.base.rsplit(":", 1)[1]))
        async with gate.running() as base, console(base, fake_clock=True) as tab:
            await tab.open()
            await tab.sign_in()
            await tab.state("live")
            seen = await write(conn, 2)
            assert await tab.rows_through(seen[-1]) == seen
            gate.passing.clear()
            missed = await write(conn, 3)
            await tab.context.clock.run_for(45_000)
            await tab.state("connecting")
            assert (await tab.statuses())[-3:] == [
                "live: live",
                "reconnecting: reconnecting in 0.5 s: no answer from the server (1006)",
                "connecting: connecting…",
            ]
            assert len(tab.sockets) == 2
            assert {"op": "ping"} in tab.sent
            gate.passing.set()
            assert await tab.rows_through(missed[-1]) == seen + missed
            await tab.state("live")
            assert tab.subscribes[-1]["cursor"] == str(seen[-1])
            assert [message["op"] for message in tab.sent] == ["subscribe", "ping", "subscribe"]


async def test_the_channel_filter_shows_only_the_checked_channels(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """Unchecking channels drops their rows and subscribes again from the saved cursor with the filter: from then on
    only the checked channel's events appear. The selection is saved, and the last box cannot be unchecked."""

    async def write_each_channel() -> dict[str, int]:
        return {
            "events": (await write(conn, type="order.submitted"))[0],
            "trades": (await write(conn, type="trade.filled"))[0],
            "snapshots": (await write(conn, type="snapshot.portfolio"))[0],
        }

    async with journal_server() as server, console(server.base) as tab:
        await tab.open()
        await tab.sign_in()
        await tab.state("live")
        first = await write_each_channel()
        assert await tab.rows_through(first["snapshots"]) == list(first.values())

        await tab.page.uncheck("#channels input[value=events]")
        await tab.page.uncheck("#channels input[value=snapshots]")
        await tab.state("live")
        assert await tab.ids() == [first["trades"]]
        assert tab.subscribes[-1] == {
            "op": "subscribe",
            "token": TOKEN,
            "cursor": str(first["snapshots"]),
            "epoch": await epoch_of(conn),
            "filter": {"channels": ["trades"]},
        }
        second = await write_each_channel()
        last = (await write(conn, type="trade.filled"))[0]  # later than everything: all before it has been sent
        assert await tab.rows_through(last) == [first["trades"], second["trades"], last]
        assert await tab.stored("localStorage", CHANNELS_KEY) == ["trades"]
        shown = {line.split(":")[0] for line in (await tab.statuses())[2:]}
        assert shown == {"connecting", "replaying", "live"}  # resubscribing never looked like a failure

        await tab.page.click("#channels input[value=trades]")  # the change is undone at once
        await expect(tab.page.locator("#channels input[value=trades]")).to_be_checked()

        await tab.page.reload()
        await tab.state("live")
        assert tab.subscribes[-1]["filter"] == {"channels": ["trades"]}
        await expect(tab.page.locator("#channels input[value=events]")).not_to_be_checked()
        await expect(tab.page.locator("#channels input[value=trades]")).to_be_checked()


async def test_a_wrong_token_shows_the_servers_message_and_is_never_retried(journal_server: StartServer) -> None:
    """4401: the server's message in the status line, the token dropped, the form back; a minute later (on the
    page's clock) still one connection, and a reload does not connect either."""
    async with journal_server() as server, console(server.base, fake_clock=True) as tab:
        await tab.open()
        await tab.sign_in("not-the-operator-token-0123")
        await tab.state("stopped")
        status = tab.page.locator("#status")
        message = 'missing or wrong token: send "Authorization: Bearer <token>" or "token" in subscribe (4401)'
        await expect(status).to_have_text(message)
        await tab.context.clock.run_for(60_000)  # fires every timer a minute holds, a reconnection's included
        await expect(status).to_have_text(message)
        await expect(tab.page.locator("#login")).to_be_visible()
        assert await tab.statuses() == [
            "signed-out: loading…",
            "signed-out: enter a token to connect",
            "connecting: connecting…",
            f"stopped: {message}",
        ]
        assert len(tab.sockets) == 1
        assert await tab.stored("sessionStorage", TOKEN_KEY) is None

        await tab.page.reload()
        await tab.state("signed-out")
        await tab.context.clock.run_for(60_000)
        assert len(tab.sockets) == 1
        assert len(tab.subscribes) == 1


async def test_a_cursor_from_another_journal_offers_to_start_over(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """4409 shows the server's message and "Start over" and retries nothing; "Start over" drops the saved position
    and subscribes without a cursor, live from the head."""
    await write(conn, 2)
    async with journal_server() as server, console(server.base) as tab:
        await tab.open()
        await tab.page.evaluate(
            "([key, value]) => localStorage.setItem(key, value)",
            [POSITION_KEY, json.dumps({"cursor": "1", "epoch": "00000000-0000-0000-0000-000000000000"})],
        )
        await tab.sign_in()
        await tab.state("reset")
        await expect(tab.page.locator("#status")).to_contain_text("not the one your cursor came from")
        await expect(tab.page.locator("#start-over")).to_be_visible()
        assert tab.subscribes[-1]["cursor"] == "1"

        await tab.page.click("#start-over")
        await tab.state("live")
        assert tab.subscribes[-1] == {"op": "subscribe", "token": TOKEN}
        assert len(tab.sockets) == 2
        assert await tab.stored("localStorage", POSITION_KEY) == {"cursor": "2", "epoch": await epoch_of(conn)}
        ids = await write(conn, 1)
        assert await tab.rows_through(ids[-1]) == ids


async def test_untrusted_text_is_shown_as_text_never_as_markup(
    conn: asyncpg.Connection, journal_server: StartServer
) -> None:
    """HTML in a payload, a symbol or a trade id is shown as those characters: no element is created from it. A
    long payload is cut at 1,000 characters. The browser enforces the CSP: an injected inline script never runs."""
    attack = '<img src=x onerror="document.title=1">'
    async with journal_server() as server, console(server.base) as tab:
        await tab.open()
        await tab.sign_in()
        await tab.state("live")
        await conn.execute(
            "INSERT INTO events (ts, type, level, symbol, trade_id, payload) VALUES "
            "('2026-11-26T09:14:03.120482Z', 'order.rejected', 'error', '<b>BTC</b>', '<script>x()</script>', $1)",
            json.dumps({"note": attack, "api_key": "demo-123"}),
        )
        long = await write(conn, payload=json.dumps({"blob": "x" * 2000}))
        assert await tab.rows_through(long[-1]) == [1, long[-1]]
        first = tab.page.locator("#rows tr").first
        cells: list[str] = await first.locator("td").all_text_contents()
        assert cells == [
            "1",
            "2026-11-26 09:14:03.120",
            "error",
            "order.rejected",
            "events",
            "<b>BTC</b>",
            "<script>x()</script>",
            json.dumps({"note": attack, "api_key": "[REDACTED]"}, separators=(",", ":")),
        ]
        assert await first.locator("td[data-col=time]").get_attribute("title") == "2026-11-26T09:14:03.120482+00:00"
        assert await tab.page.locator("#rows *:not(tr, td)").count() == 0
        assert await tab.page.title() == "Journal console"
        payload = await tab.page.locator("#rows tr").last.locator("td[data-col=payload]").text_content()
        whole = json.dumps({"blob": "x" * 2000}, separators=(",", ":"))
        assert payload == f"{whole[:1000]} … ({len(whole)} characters)"

        async with tab.page.expect_console_message(lambda message: "Content Security Policy" in message.text) as report:
            await tab.page.evaluate(
                "() => { const s = document.createElement('script'); s.textContent = 'document.title = 2';"
                " document.body.append(s); }"
            )
        assert "directive 'script-src 'self''" in (await report.value).text
        assert len(tab.problems) == 1
        assert await tab.page.title() == "Journal console"
        tab.problems.clear()


async def test_console_files_are_served_with_their_types_and_the_policy(
    make_settings: MakeSettings, serve: Serve
) -> None:
    """The page, its script and its style, each with its media type and the CSP; any other name is 404."""
    async with serve(create_app(make_settings())) as base, httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/console")
        named = await client.get("/console/index.html")
        script = await client.get("/console/console.js")
        style = await client.get("/console/console.css")
        unknown = await client.get("/console/unknown.txt")
        escape = await client.get("/console/..%2Fapp.py")
    for response in (page, named, script, style):
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == (
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert page.headers["content-type"] == named.headers["content-type"] == "text/html; charset=utf-8"
    assert page.content == named.content
    assert b'<script src="/console/console.js" defer></script>' in page.content
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert b"textContent" in script.content
    assert b"innerHTML" not in script.content
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert (unknown.status_code, escape.status_code) == (404, 404)
