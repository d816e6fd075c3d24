"""Operators learn that a writer leaks, never the secret: masks counted by rule once per event, and a rate-limited
log line naming the event, its type, the key path and the rule (docs/50_OPERATIONS.md#a-writer-leaks-secrets)."""

from __future__ import annotations

import json
import logging
import random

import asyncpg
import pytest

from journal_api.journal.leaks import LeakLog
from journal_api.journal.redaction import REDACTED, Mask, may_hold_secrets, redact
from journal_api.journal.repository import append_event
from journal_api.stream.logs import FIELDS

from .conftest import Connect, StartServer, write
from .secret_corpus import B62, BENIGN, samples
from .test_operations import scrape


def _github_token() -> str:
    rng = random.Random(5)
    return "ghp_" + "".join(rng.choice(B62) for _ in range(36))


def _leak_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [getattr(record, FIELDS) for record in caplog.records if record.name == "journal_api.leaks"]


async def test_masks_are_counted_once_per_event_whatever_the_number_of_clients(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect
) -> None:
    """Two events with a token each, three live clients, then three more replaying them: journal_redactions_total
    {rule} is 2, not 6 or 12 (counted where the hub first reads an event, never per client or per replay)."""
    token = _github_token()
    expected = [{"note": f"retrying with {REDACTED}", "qty": 1}] * 2
    # A one-row buffer: the replays read the events from the database, building their frames again.
    async with (
        journal_server(buffer_rows=1) as server,
        connect(server.url) as a,
        connect(server.url) as b,
        connect(server.url) as c,
    ):
        for client in (a, b, c):
            await client.subscribe(cursor=None)
            assert (await client.frame())["op"] == "live"
        ids = await write(conn, 2, payload=json.dumps({"note": f"retrying with {token}", "qty": 1}))
        for client in (a, b, c):
            assert [event["payload"] for event in await client.events_through(ids[-1])] == expected
        for _ in range(3):
            async with connect(server.url) as replaying:
                await replaying.subscribe(cursor="0")
                assert [event["payload"] for event in await replaying.events_through(ids[-1])] == expected
        figures = await scrape(server.base)
    assert figures[("journal_redactions_total", (("rule", "github-token"),))] == 2
    assert [name for name, _ in figures if name == "journal_redactions_total"] == ["journal_redactions_total"]


def test_the_leak_log_names_event_type_path_and_rule_once_per_rule_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A burst logs one line per rule; after the interval the next line says how many went unlogged."""
    caplog.set_level(logging.WARNING, logger="journal_api.leaks")
    now = [100.0]
    leaks = LeakLog(interval_s=60, clock=lambda: now[0])
    for event_id in range(1, 6):
        leaks(event_id, "order.rejected", Mask("jwt", "payload.message"))
    leaks(6, "order.rejected", Mask("uuid", "payload.note"))
    now[0] += 60
    leaks(7, "risk.limit_warning", Mask("jwt", "payload.detail[0]"))
    assert leaks.counts == {"jwt": 6, "uuid": 1}
    assert _leak_lines(caplog) == [
        {"event_id": "1", "type": "order.rejected", "path": "payload.message", "rule": "jwt", "unlogged": 0},
        {"event_id": "6", "type": "order.rejected", "path": "payload.note", "rule": "uuid", "unlogged": 0},
        {"event_id": "7", "type": "risk.limit_warning", "path": "payload.detail[0]", "rule": "jwt", "unlogged": 4},
    ]
    assert all(record.levelname == "WARNING" for record in caplog.records)


async def test_append_event_masks_before_storing_and_logs_in_the_writer_process(
    conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """The stored row holds only the marker; the writer's log names the stored id, the path and the rule."""
    caplog.set_level(logging.WARNING, logger="journal_api.leaks")
    token = _github_token()
    event = await append_event(
        conn, type="order.rejected", payload={"venue": {"message": f"bad key {token}"}}, symbol=token
    )
    stored = await conn.fetchrow("SELECT symbol, payload::text FROM events WHERE id = $1", event.id)
    assert stored is not None
    assert json.loads(stored["payload"]) == {"venue": {"message": f"bad key {REDACTED}"}}
    assert stored["symbol"] == REDACTED
    assert sorted((line["path"], line["event_id"]) for line in _leak_lines(caplog)) == [
        ("payload.venue.message", str(event.id))
    ]  # the symbol's mask, same rule and within the interval, is counted but not logged
    assert token not in caplog.text


@pytest.mark.parametrize("seed", [1, 2])
def test_the_fast_path_never_copies_a_payload_redaction_would_change(seed: int) -> None:
    """Every generated secret, under a key or in a sentence, sends the payload down the redacting path."""
    for _, text, _secret in samples(per_kind=1, seed=seed):
        for payload in ({"note": text}, {"log": [f"engine said: {text} (retrying)"]}, {text: 1}):
            assert redact(payload) != payload
            assert may_hold_secrets(json.dumps(payload, ensure_ascii=False))


@pytest.mark.parametrize(
    ("text", "changed"),
    [
        # Python's re would fold a dotless i into "basic" case-insensitively; the rules fold ASCII only, as RE2 does
        ('{"note": "Bas\u0131c dXNlcjpwYXNzd29yZA=="}', False),
        ('{"note": "api_\u212aey=abcdef123456"}', False),  # Kelvin sign: not a name in free text, but...
        ('{"\u0130api_key": 1}', True),  # ...keys fold it, as Python's lower() does
        ('{"note": "abandon ability able about above absent absorb abstract absurd abuse access accident"}', True),
        ('{"note": "abandon\\tability"}', False),
    ],
)
def test_the_fast_path_agrees_with_redaction_on_confusable_text(text: str, changed: bool) -> None:
    """Non-ASCII case folding and escapes: whenever redaction changes the value, the text was not copied."""
    value = json.loads(text)
    assert (redact(value) != value) is changed
    assert may_hold_secrets(text) or not changed


def test_benign_values_mostly_stay_on_the_fast_path() -> None:
    """Symbols, prices, statuses and plain messages are copied as they are (no decode): the fast path is real."""
    copied = [value for key, value in BENIGN if not may_hold_secrets(json.dumps({key: value}))]
    assert len(copied) >= 80
