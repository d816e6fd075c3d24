"""From a presented string to a credential: operator token, API key or JWT (docs/60_ACCESS.md#credentials).

One check per subscribe or refresh, never per event. Every refusal is a :class:`ProtocolError` whose code the
protocol closes with: ``unauthorized``, ``token_expired`` or ``token_revoked`` (4401).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from journal_api.access.grants import FULL, Grant, grant_from_claim
from journal_api.access.jwts import JwtVerifier, looks_like_jwt
from journal_api.access.keys import KEY_PREFIX, find_key, has_live_key, is_revoked_jti, touch_key
from journal_api.stream.protocol import UNAUTHORIZED_MESSAGE, ProtocolError, known_token
from journal_api.stream.settings import Settings

__all__ = ["OPERATOR", "Authenticator", "Credential"]

OPERATOR = "operator"
"""The subject every operator token shares."""

_TOUCH_EVERY = timedelta(minutes=1)  # last-used is written at most this often per key


@dataclass(frozen=True, slots=True)
class Credential:
    """Who is reading (``subject``), what they may read, until when (``exp``, seconds since 1970, or ``None``),
    and what revokes it (``revocation``: ``("key", id)`` or ``("jti", jti)``, or ``None``)."""

    subject: str
    grant: Grant
    exp: int | None
    revocation: tuple[str, str] | None


class Authenticator:
    """Turns presented strings into credentials. Public methods: :meth:`start`, :meth:`authenticate`."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self._settings = settings
        self._pool = pool
        self.jwt = JwtVerifier(settings) if settings.jwt_configured else None

    async def start(self) -> None:
        """Load the JWKS and check that some credential source is configured; raise ``RuntimeError`` saying what
        to configure otherwise."""
        if self.jwt is not None:
            await self.jwt.start()
        elif not self._settings.tokens and not await self._has_live_key():
            raise RuntimeError(
                "no credential is configured: set JOURNAL_TOKENS, JOURNAL_JWT_SECRET or JOURNAL_JWKS_URL, "
                "or create a key with `journal keys create NAME` (docs/60_ACCESS.md)"
            )

    async def _has_live_key(self) -> bool:
        try:
            return await has_live_key(self._pool)
        except asyncpg.UndefinedTableError:
            raise RuntimeError(
                "the access tables are missing (migrations/0004_access.sql); run `journal migrate` first"
            ) from None

    async def authenticate(self, token: str) -> Credential:
        """The credential ``token`` stands for; raise :class:`ProtocolError` when it stands for none."""
        if token.startswith(KEY_PREFIX):
            return await self._key(token)
        if looks_like_jwt(token):
            return await self._jwt(token)
        if known_token(token, self._settings.tokens):
            return Credential(subject=OPERATOR, grant=FULL, exp=None, revocation=None)
        raise ProtocolError("unauthorized", UNAUTHORIZED_MESSAGE)

    async def _key(self, token: str) -> Credential:
        found = await find_key(self._pool, token)
        if found is None:
            raise ProtocolError("unauthorized", "unknown API key; check it was copied whole (jk_…)")
        record, now = found
        if record.revoked_at is not None:
            raise ProtocolError("token_revoked", f"API key {record.name} was revoked; ask for a new one")
        if record.expires_at is not None and record.expires_at <= now:
            raise ProtocolError("token_expired", f"API key {record.name} has expired; ask for a new one")
        if record.last_used_at is None or now - record.last_used_at >= _TOUCH_EVERY:
            await touch_key(self._pool, record.id)
        exp = None if record.expires_at is None else _seconds(record.expires_at)
        return Credential(subject=f"key:{record.name}", grant=record.grant, exp=exp, revocation=("key", record.id))

    async def _jwt(self, token: str) -> Credential:
        if self.jwt is None:
            raise ProtocolError("unauthorized", "this server takes no JWTs (no JOURNAL_JWT_SECRET or JOURNAL_JWKS_URL)")
        claims = await self.jwt.verify(token)
        try:
            grant = grant_from_claim(claims.get("journal"))
        except ValueError as exc:
            raise ProtocolError("unauthorized", f"{exc}; the identity provider must issue one") from None
        jti = claims.get("jti")
        if isinstance(jti, str) and await is_revoked_jti(self._pool, jti):
            raise ProtocolError("token_revoked", "this token was revoked; get a new one")
        subject = f"jwt:{claims.get('iss', '')}:{claims.get('sub', '')}"
        revocation = ("jti", jti) if isinstance(jti, str) else None
        return Credential(subject=subject, grant=grant, exp=int(claims["exp"]), revocation=revocation)


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())
