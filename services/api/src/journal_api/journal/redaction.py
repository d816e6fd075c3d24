"""Redaction of secrets in event payloads: applied on write and again on every read path.

See docs/20_EVENT_JOURNAL.md#redaction for the rules this module implements: whole values under sensitive keys,
and the secret part of any string whose shape is a secret's (the rules in :mod:`journal_api.journal.secret_rules`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from journal_api.journal.secret_rules import SENSITIVE_PARTS, may_match, triggered
from journal_api.journal.secret_shapes import Rule

__all__ = [
    "REDACTED",
    "Mask",
    "OnMask",
    "is_sensitive_key",
    "looks_secret",
    "may_hold_secrets",
    "names_public_data",
    "redact",
    "redact_text",
]

REDACTED = "[REDACTED]"

_NOT_ALNUM = re.compile(r"[^a-z0-9]")

# Words that say a value is public data (docs/20_EVENT_JOURNAL.md#redaction, ambiguous shapes).
_PUBLIC_WORDS = frozenset(
    (
        "id",
        "ids",
        "uuid",
        "guid",
        "hash",
        "txid",
        "txhash",
        "tx",
        "digest",
        "checksum",
        "sha256",
        "address",
        "addr",
        "block",
        "blockhash",
        "commit",
        "ref",
        "order",
        "request",
        "trace",
        "correlation",
        "pubkey",
        "public",
        "root",
        "merkle",
        "parent",
        "receipt",
        "txn",
        "transaction",
        "fingerprint",
        "etag",
        "sha1",
        "sha512",
        "md5",
        "nonce",
    )
)
# Keys that name an account on a chain: the value is an address (base58 addresses look like high-entropy tokens).
# Keys only: in free text "to" or "from" before a 64-hex value says nothing about what it is.
_ADDRESS_KEYS = frozenset(
    (
        "from",
        "to",
        "sender",
        "recipient",
        "receiver",
        "owner",
        "mint",
        "wallet",
        "account",
        "destination",
        "source",
        "beneficiary",
        "contract",
        "pool",
        "program",
        "signer",
    )
)
_NOT_IDS = frozenset(
    (
        "valid",
        "invalid",
        "paid",
        "unpaid",
        "prepaid",
        "avoid",
        "liquid",
        "hybrid",
        "fluid",
        "solid",
        "rapid",
    )
)
_KEY_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_WORD_BEFORE = re.compile(r"([A-Za-z0-9]+)[\s:=#'\"(\[/-]*\Z")


@dataclass(frozen=True, slots=True)
class Mask:
    """One masked secret: the rule that found it and where (key path); never the value."""

    rule: str
    path: str


OnMask = Callable[[Mask], None]
"""Told of every value-shape mask, for metrics and logs; key-name masks are the rule working, not a leak."""


def is_sensitive_key(key: str) -> bool:
    """Whether the value under ``key`` must never be shown."""
    folded = _NOT_ALNUM.sub("", key.lower())
    return any(part in folded for part in SENSITIVE_PARTS)


def names_public_data(key: str, *, in_text: bool = False) -> bool:
    """Whether ``key`` names an id, hash, address or digest (or, as a key, an account): an ambiguous shape under it
    is shown. ``in_text``: ``key`` is the word before a value in free text, where account words say nothing."""
    for word in _KEY_WORDS.findall(key):
        word = word.lower()
        if word in _PUBLIC_WORDS or (not in_text and word in _ADDRESS_KEYS):
            return True
        if word.endswith(("id", "hash")) and len(word) > 4 and word not in _NOT_IDS:
            return True
    return False


def looks_secret(text: str, *, key: str = "") -> bool:
    """Whether a string under ``key`` holds anything a value-shape rule masks (no key: ambiguous shapes count)."""
    return _mask(text, public=names_public_data(key), path=key, on_mask=None) != text


def may_hold_secrets(json_text: str) -> bool:
    """Whether :func:`redact` might change the value this JSON text decodes to; ``False`` only when it certainly
    would not, which lets a reader copy the text as it is.

    Checked on the text as a whole in one RE2 pass, so it is cheap and errs only towards ``True``: without a
    backslash, every key and string appears verbatim in the text, so a rule's trigger occurs in the text wherever
    the rule matches a string, and a sensitive key part occurs in it with only removed characters in between."""
    return "\\" in json_text or may_match(json_text)


def redact_text(text: str | None, *, on_mask: OnMask | None = None, path: str = "") -> str | None:
    """``text`` (a column or a value under the key ``path``) with every secret in it replaced by :data:`REDACTED`
    (``None`` stays ``None``); ``trade_id`` names an id, so a UUID-shaped trade id is shown."""
    return None if text is None else _mask(text, public=names_public_data(path), path=path, on_mask=on_mask)


def redact(value: Any, *, on_mask: OnMask | None = None, path: str = "") -> Any:
    """A copy of a JSON value with sensitive keys' values and the secrets in strings replaced by REDACTED;
    ``on_mask`` is told of each value-shape mask, with its key path below ``path``."""
    return _walk(value, public=False, path=path, on_mask=on_mask)


def _walk(value: Any, *, public: bool, path: str, on_mask: OnMask | None) -> Any:
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            safe_key = _mask(key, public=False, path=where, on_mask=on_mask)
            if is_sensitive_key(key):
                result[safe_key] = REDACTED
            else:
                result[safe_key] = _walk(item, public=names_public_data(key), path=where, on_mask=on_mask)
        return result
    if isinstance(value, list):
        return [_walk(item, public=public, path=f"{path}[{n}]", on_mask=on_mask) for n, item in enumerate(value)]
    if isinstance(value, str):
        return _mask(value, public=public, path=path, on_mask=on_mask)
    return value


def _mask(text: str, *, public: bool, path: str, on_mask: OnMask | None) -> str:
    """``text`` with the secret spans found by the triggered rules replaced, overlapping spans merged."""
    spans: list[tuple[int, int, Rule]] = []
    for rule in triggered(text):
        for start, end in rule.spans(text):
            if text.startswith(REDACTED, start) or (rule.ambiguous and (public or _public_before(text, start))):
                continue
            spans.append((start, end, rule))
    if not spans:
        return text
    spans.sort(key=lambda span: (span[0], -span[1]))
    pieces: list[str] = []
    done = 0
    for start, end, rule in spans:
        if start >= done:  # else it overlaps a span already masked, which grows to cover it
            pieces += (text[done:start], REDACTED)
            if on_mask is not None:
                on_mask(Mask(rule.id, path))
        done = max(done, end)
    pieces.append(text[done:])
    return "".join(pieces)


def _public_before(text: str, start: int) -> bool:
    """Whether the word right before ``start`` names public data (``tx 0x…``, ``order_id=…``, ``hash: …``)."""
    found = _WORD_BEFORE.search(text, max(0, start - 40), start)
    return found is not None and names_public_data(found.group(1), in_text=True)
