"""Redaction of secrets in event payloads: applied on write and again on every read path.

See docs/20_EVENT_JOURNAL.md#redaction for the rules this module implements.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REDACTED", "is_sensitive_key", "looks_secret", "may_hold_secrets", "redact", "redact_text"]

REDACTED = "[REDACTED]"

# Compared against keys lower-cased with every character that is not a letter or digit removed, by containment:
# `db_password`, `X-Api-Key`, `api key` and `refresh_token` all contain one of these.
_SENSITIVE_PARTS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "privkey",
    "authorization",
    "cookie",
    "sessionid",
    "passphrase",
    "signature",
    "credential",
    "mnemonic",
    "seedphrase",
)

# No word boundaries: a secret inside a URL or after an underscore (`Bearer%20…`, `id_token%3DeyJ…`) counts too.
_SECRET_VALUE = re.compile(
    r"(?i:bearer(?:\s|%20)+[a-z0-9\-._~+/]{8,}=*)"  # an HTTP bearer credential: real tokens are long
    r"|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"  # a JWT: base64url JSON header, payload, signature
    r"|-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"  # a PEM private key of any kind
    r"|jk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}"  # an API key of this journal (docs/60_ACCESS.md#api-keys)
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def is_sensitive_key(key: str) -> bool:
    """Whether the value under ``key`` must never be shown."""
    folded = _NOT_ALNUM.sub("", key.lower())
    return any(part in folded for part in _SENSITIVE_PARTS)


def looks_secret(text: str) -> bool:
    """Whether a string contains a bearer token, a JWT, a PEM private key or one of the journal's API keys."""
    return _SECRET_VALUE.search(text) is not None


def may_hold_secrets(json_text: str) -> bool:
    """Whether :func:`redact` might change the value this JSON text decodes to; ``False`` only when it certainly
    would not, which lets a reader copy the text as it is.

    Checked on the text as a whole, so it is cheap and errs only towards ``True``: without a backslash, every key
    and string appears verbatim in the text, so a secret-looking string matches somewhere in it, and a sensitive
    key, folded, is a run of the whole text folded the same way."""
    if "\\" in json_text or _SECRET_VALUE.search(json_text):
        return True
    folded = _NOT_ALNUM.sub("", json_text.lower())
    return any(part in folded for part in _SENSITIVE_PARTS)


def redact_text(text: str | None) -> str | None:
    """``text`` itself, or :data:`REDACTED` when it looks like a secret."""
    if text is not None and looks_secret(text):
        return REDACTED
    return text


def redact(value: Any) -> Any:
    """A copy of a JSON value with sensitive keys' values and secret-looking strings replaced by REDACTED."""
    if isinstance(value, dict):
        return {
            REDACTED if looks_secret(key) else key: REDACTED if is_sensitive_key(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
