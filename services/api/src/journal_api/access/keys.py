"""API keys and revoked JWT ids in Postgres: the SQL of access control (docs/60_ACCESS.md#api-keys).

A key is ``jk_<id>_<secret>``: the id (8 hex characters) finds its row, the key's SHA-256 is compared in constant
time. Revocations write their row and ``NOTIFY journal_control`` in one transaction, so every replica hears of a
revocation exactly when it is committed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from journal_api.access.grants import Grant, grant_from_claim

__all__ = [
    "CONTROL_CHANNEL",
    "KEY_PREFIX",
    "KeyRecord",
    "create_key",
    "find_key",
    "has_live_key",
    "is_revoked_jti",
    "key_id",
    "list_keys",
    "list_revoked_jtis",
    "revoke_jti",
    "revoke_key",
    "revoked_among",
    "touch_key",
]

CONTROL_CHANNEL = "journal_control"
"""The NOTIFY channel of revocations; its payload is ``{"revoked": "key"|"jti", "id": …}``."""

KEY_PREFIX = "jk_"
_KEY = re.compile(r"jk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_COLUMNS = "id, name, grant_json::text AS grant_json, created_at, expires_at, last_used_at, revoked_at"

Database = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key's row, without its hash."""

    id: str
    name: str
    grant: Grant
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def _from_row(cls, row: asyncpg.Record) -> KeyRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            grant=grant_from_claim(orjson.loads(row["grant_json"])),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            last_used_at=row["last_used_at"],
            revoked_at=row["revoked_at"],
        )


def key_id(text: str) -> str | None:
    """The id of a string shaped like a key, else ``None``."""
    match = _KEY.fullmatch(text)
    return match[1] if match else None


def _hash(key: str) -> bytes:
    # SHA-256, not a slow password hash: the key holds 256 random bits, so nobody can guess it from its hash, and
    # a deliberate slowness would only add milliseconds to every subscribe (docs/60_ACCESS.md#api-keys).
    return hashlib.sha256(key.encode()).digest()


async def create_key(conn: asyncpg.Connection, name: str, grant: Grant, expires_at: datetime | None) -> str:
    """Store a new key and return it; raise ``asyncpg.UniqueViolationError`` if a live key has ``name`` (or, once
    in billions, another key drew the same id: then make it again)."""
    identifier = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{identifier}_{secrets.token_urlsafe(32)}"
    await conn.execute(
        "INSERT INTO access_keys (id, name, secret_hash, grant_json, expires_at) VALUES ($1, $2, $3, $4, $5)",
        identifier,
        name,
        _hash(key),
        grant.model_dump_json(exclude_defaults=True),
        expires_at,
    )
    return key


async def list_keys(conn: Database, *, include_revoked: bool = False) -> list[KeyRecord]:
    """Every key (not revoked unless asked), oldest first."""
    where = "" if include_revoked else " WHERE revoked_at IS NULL"
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM access_keys{where} ORDER BY created_at, id")  # noqa: S608
    return [KeyRecord._from_row(row) for row in rows]


async def revoke_key(conn: asyncpg.Connection, name: str) -> bool:
    """Revoke the live key named ``name`` and tell every replica; whether there was one."""
    async with conn.transaction():
        identifier = await conn.fetchval(
            "UPDATE access_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING id", name
        )
        if identifier is not None:
            await _announce(conn, "key", identifier)
    return identifier is not None


async def revoke_jti(conn: asyncpg.Connection, jti: str) -> bool:
    """Revoke the JWTs carrying ``jti`` and tell every replica; whether it was not revoked already."""
    async with conn.transaction():
        added = await conn.fetchval(
            "INSERT INTO revoked_tokens (jti) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", jti
        )
        await _announce(conn, "jti", jti)
    return added is not None


async def _announce(conn: asyncpg.Connection, kind: str, identifier: str) -> None:
    payload = orjson.dumps({"revoked": kind, "id": identifier}).decode()
    await conn.execute("SELECT pg_notify($1, $2)", CONTROL_CHANNEL, payload)


async def list_revoked_jtis(conn: Database) -> list[tuple[str, datetime]]:
    """Every revoked ``jti`` and when, oldest first."""
    rows = await conn.fetch("SELECT jti, revoked_at FROM revoked_tokens ORDER BY revoked_at, jti")
    return [(row["jti"], row["revoked_at"]) for row in rows]


async def find_key(db: Database, key: str) -> tuple[KeyRecord, datetime] | None:
    """The record of ``key`` and the database's time, or ``None`` when no row has its id and hash."""
    identifier = key_id(key)
    if identifier is None:
        return None
    row = await db.fetchrow(f"SELECT {_COLUMNS}, secret_hash, now() AS now FROM access_keys WHERE id = $1", identifier)  # noqa: S608
    if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), _hash(key)):
        return None
    return KeyRecord._from_row(row), row["now"]


async def touch_key(db: Database, identifier: str) -> None:
    """Record that the key was used (the caller does it at most once a minute per key)."""
    await db.execute("UPDATE access_keys SET last_used_at = now() WHERE id = $1", identifier)


async def is_revoked_jti(db: Database, jti: str) -> bool:
    return bool(await db.fetchval("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)", jti))


async def has_live_key(db: Database) -> bool:
    """Whether some key is neither revoked nor expired (a credential source, docs/60_ACCESS.md)."""
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM access_keys WHERE revoked_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > now()))"
        )
    )


async def revoked_among(db: Database, key_ids: list[str], jtis: list[str]) -> tuple[set[str], set[str]]:
    """Which of these key ids and ``jti`` values are revoked now (one statement)."""
    rows = await db.fetch(
        "SELECT 'key' AS kind, id FROM access_keys WHERE id = ANY($1::text[]) AND revoked_at IS NOT NULL "
        "UNION ALL SELECT 'jti', jti FROM revoked_tokens WHERE jti = ANY($2::text[])",
        key_ids,
        jtis,
    )
    return {r["id"] for r in rows if r["kind"] == "key"}, {r["id"] for r in rows if r["kind"] == "jti"}
