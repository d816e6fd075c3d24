"""Secrets never leave the journal: sensitive keys and secret-looking values (docs/20_EVENT_JOURNAL.md#redaction)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from journal_api.journal.models import EventFilter
from journal_api.journal.redaction import REDACTED, is_sensitive_key, looks_secret, redact, redact_text

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_KINDS = ["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "passwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "apikey",
        "api_secret",
        "private_key",
        "authorization",
        "cookie",
        "passphrase",
        "signature",
        "credentials",
        "mnemonic",
        "seed_phrase",
        # case and separators are ignored, and a listed name inside a longer key still counts
        "PASSWORD",
        "Api-Key",
        "X-API-KEY",
        "apiSecret",
        "Private_Key",
        "seed-phrase",
        "db_password",
        "auth_token_v2",
        "Set-Cookie",
        # any separator, and the names the first list missed
        "api key",
        "api.key",
        "credential",
        "aws_access_key_id",
        "pwd",
        "privkey",
        "session_id",
    ],
)
def test_sensitive_keys_are_recognised(key: str) -> None:
    """Each listed name, in any case, with or without - and _, is sensitive."""
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["symbol", "price", "quantity", "side", "venue", "reason", "seed", "api", "key", "auth"]
)
def test_ordinary_keys_are_not_sensitive(key: str) -> None:
    """Trading fields are left alone."""
    assert not is_sensitive_key(key)


def test_sensitive_values_are_replaced_at_any_depth_and_in_lists() -> None:
    """Whatever sits under a sensitive key (string, number, object, list) becomes REDACTED, everywhere."""
    payload = {
        "order": {"side": "buy", "venue": {"name": "sim", "API_KEY": "k-123", "auth": {"Password": 42}}},
        "legs": [{"token": {"nested": "x"}, "qty": 1}, [{"client-secret": ["a", "b"]}]],
        "secret": None,
        "price": 101.5,
    }
    assert redact(payload) == {
        "order": {"side": "buy", "venue": {"name": "sim", "API_KEY": REDACTED, "auth": {"Password": REDACTED}}},
        "legs": [{"token": REDACTED, "qty": 1}, [{"client-secret": REDACTED}]],
        "secret": REDACTED,
        "price": 101.5,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer abc.def-123_~+/=", REDACTED),
        ("bearer    s3cr3t-v4lue", REDACTED),
        ("header was: Authorization: BEARER xyz12345", f"header was: Authorization: {REDACTED}"),
        (JWT, REDACTED),
        (f"jwt={JWT};", f"jwt={REDACTED};"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", REDACTED),  # alg none: empty signature
        # inside URLs and identifiers: no word boundary is needed
        ("Bearer%20abcdefghij", REDACTED),
        ("auth_Bearer abcdefghijk", f"auth_{REDACTED}"),
        (f"https://x.test/cb?id_token%3D{JWT}", f"https://x.test/cb?id_token%{REDACTED}"),
        (f"token_{JWT}", REDACTED),  # glued to the token: one run of token characters, all masked
        *[
            (f"-----BEGIN {kind}PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END {kind}PRIVATE KEY-----", REDACTED)
            for kind in PEM_KINDS
        ],
    ],
)
def test_secret_looking_values_are_masked_under_any_key(value: str, expected: str) -> None:
    """Bearer tokens, JWTs and PEM private keys are hidden under innocent keys and inside lists; the words around
    them stay."""
    assert looks_secret(value)
    assert redact({"note": value, "list": [value, "ok"]}) == {"note": expected, "list": [expected, "ok"]}


@pytest.mark.parametrize(
    "value",
    [
        "bearer",  # the word alone carries no credential
        "the bearer of bad news",  # prose: a credential has at least 8 token characters
        "Bearer abc",
        "eyJ-not-a-jwt",
        "-----BEGIN PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----",
        "BTC-USD",
        "",
        "Basic abcdefghi",  # not base64 at all
        "the basic version 123456",  # decodes, but to no user:password
        "the engine will retry after the next funding interval",  # a run of words, few from the BIP-39 list
        "abandon ability able about above absent absorb abstract absurd abuse access",  # eleven: no mnemonic
    ],
)
def test_ordinary_values_are_kept(value: str) -> None:
    """Values that merely resemble a secret's surroundings are kept."""
    assert not looks_secret(value)
    assert redact({"note": value}) == {"note": value}


def test_redaction_returns_a_copy_and_keeps_keys_and_other_types() -> None:
    """The input is not mutated; keys, numbers, booleans and null pass through."""
    payload: dict[str, Any] = {"password": "p", "n": 1, "f": 1.5, "b": True, "z": None, "l": [1, "x"]}
    before = copy.deepcopy(payload)
    result = redact(payload)
    assert payload == before
    assert result == {"password": REDACTED, "n": 1, "f": 1.5, "b": True, "z": None, "l": [1, "x"]}
    assert list(result) == list(payload)


def test_redact_text_handles_none_and_plain_text() -> None:
    """Columns such as symbol may be null; plain text passes; a secret does not."""
    assert redact_text(None) is None
    assert redact_text("ETH-USD") == "ETH-USD"
    assert redact_text("Bearer abcdefgh") == REDACTED


def test_a_key_that_looks_like_a_secret_is_replaced() -> None:
    """A secret used as a key is hidden like a secret used as a value."""
    assert redact({JWT: 1, "ok": {"Bearer abcdefghij": 2}}) == {REDACTED: 1, "ok": {REDACTED: 2}}


def test_a_uuid_trade_id_is_shown_and_a_uuid_symbol_is_masked() -> None:
    """The column's name is the context: trade_id names an id, symbol does not (ambiguous shapes policy)."""
    uuid = "3f2a1b4c-1111-4222-8333-444455556666"
    assert redact_text(uuid, path="trade_id") == uuid
    assert redact_text(uuid, path="symbol") == REDACTED
    assert EventFilter(trade_ids=[uuid]).trade_ids == [uuid]
    with pytest.raises(ValidationError, match="may not look like a secret"):
        EventFilter(symbols=[uuid])


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"tx_hash": f"0x{'ab' * 32}"}, {"tx_hash": f"0x{'ab' * 32}"}),
        ({"blockHash": "ab" * 32}, {"blockHash": "ab" * 32}),
        ({"note": f"0x{'ab' * 32}"}, {"note": REDACTED}),
        ({"note": f"tx 0x{'ab' * 32} confirmed"}, {"note": f"tx 0x{'ab' * 32} confirmed"}),
        ({"note": f"loaded wallet 0x{'ab' * 32}"}, {"note": f"loaded wallet {REDACTED}"}),
        ({"valid": f"0x{'ab' * 32}"}, {"valid": REDACTED}),  # ends with "id" but names no id
        ({"orderid": "3f2a1b4c-1111-4222-8333-444455556666"}, {"orderid": "3f2a1b4c-1111-4222-8333-444455556666"}),
        ({"ids": ["3f2a1b4c-1111-4222-8333-444455556666"]}, {"ids": ["3f2a1b4c-1111-4222-8333-444455556666"]}),
        ({"order_id": f"ghp_{'aB3' * 12}"}, {"order_id": REDACTED}),  # an unambiguous token, whatever the key
        ({"to": f"0x{'ab' * 32}"}, {"to": f"0x{'ab' * 32}"}),  # a key naming an account
        ({"note": f"sent to 0x{'ab' * 32}"}, {"note": f"sent to {REDACTED}"}),  # ...says nothing in free text
    ],
)
def test_ambiguous_shapes_are_decided_by_their_key_or_the_word_before(
    payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Shown under an id/hash/address key or after such a word; masked in free text and under other keys."""
    assert redact(payload) == expected
