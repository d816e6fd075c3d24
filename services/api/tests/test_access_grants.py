"""Grants and the effective filter (docs/60_ACCESS.md#grants): pure rules, no server."""

from __future__ import annotations

import pytest

from journal_api.access.grants import FULL, Grant, GrantError, effective_filter, grant_from_claim
from journal_api.journal.models import EventFilter

SCOPED = Grant(
    channels=("trades", "events"),
    types=("trade.*", "risk.halt"),
    symbols=("BTC-USD",),
    levels=("warn", "error", "critical"),
)


def test_omitted_fields_take_the_grant_and_given_ones_stay_the_clients() -> None:
    assert effective_filter(EventFilter(), SCOPED) == EventFilter(
        channels=["trades", "events"], types=["trade.*", "risk.halt"], symbols=["BTC-USD"], min_level="warn"
    )
    asked = EventFilter(channels=["trades"], types=["trade.filled", "risk.halt"], trade_ids=["T-1"], min_level="error")
    assert effective_filter(asked, SCOPED) == asked.model_copy(update={"symbols": ["BTC-USD"]})
    assert effective_filter(asked, FULL) == asked


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        (EventFilter(channels=["snapshots"]), "channels snapshots not granted"),
        (EventFilter(symbols=["ETH-USD", "BTC-USD"]), "symbols ETH-USD not granted"),
        (EventFilter(types=["trade.*", "order.*"]), "types order.* not granted"),
        (EventFilter(types=["risk.*"]), "types risk.* not granted"),  # an exact grant does not cover a prefix
        (EventFilter(types=["risk.halted"]), "types risk.halted not granted"),
        (EventFilter(min_level="info"), "min_level info not granted; this credential allows warn and above"),
    ],
)
def test_a_field_beyond_the_grant_is_refused(asked: EventFilter, message: str) -> None:
    with pytest.raises(GrantError, match=f"^{message}"):
        effective_filter(asked, SCOPED)


def test_levels_are_a_level_and_every_more_severe_one() -> None:
    assert Grant(levels=None).min_level is None
    assert Grant(levels=("critical", "error")).levels == ("error", "critical")
    assert Grant(levels=("critical", "error")).min_level == "error"
    with pytest.raises(ValueError, match="levels must be a level and every more severe one"):
        Grant(levels=("info", "critical"))


@pytest.mark.parametrize(
    ("grant", "text"),
    [
        (FULL, "everything metrics"),
        (Grant(), "everything"),
        (SCOPED, "channels=trades,events types=trade.*,risk.halt symbols=BTC-USD levels>=warn"),
        (Grant(levels=("critical",), metrics=True), "levels>=critical metrics"),
    ],
)
def test_a_grant_describes_itself_in_one_line(grant: Grant, text: str) -> None:
    assert grant.describe() == text


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ("trades", 'the "journal" claim must be an object'),
        ({"channels": []}, r'the "journal" claim is not a grant \(channels: Tuple should have at least 1 item'),
        ({"admin": True}, r"admin: Extra inputs are not permitted"),
        ({"levels": ["loud"]}, r"levels.0: Input should be"),
    ],
)
def test_a_claim_that_is_not_a_grant_says_why(claim: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        grant_from_claim(claim)
