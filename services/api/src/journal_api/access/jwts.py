"""JWTs from an identity provider, checked by PyJWT with the algorithm pinned by the key (docs/60_ACCESS.md#jwts).

A token with a ``kid`` is checked only against that JWKS key, with the one algorithm its key type allows; a token
without one only against ``JOURNAL_JWT_SECRET`` with HS256. The token's own ``alg`` never chooses.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import jwt
import orjson

from journal_api.stream.protocol import ProtocolError
from journal_api.stream.settings import Settings

__all__ = ["JwksError", "JwtVerifier", "looks_like_jwt"]

_MAX_JWKS_BYTES = 1_048_576
_FETCH_TIMEOUT_S = 5.0
_log = logging.getLogger("journal_api.access")


class JwksError(RuntimeError):
    """The JWKS cannot be loaded; the message names the source (never a secret) and the cause."""


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts, the first a base64url JSON object (``eyJ`` is ``{"``)."""
    return token.startswith("eyJ") and token.count(".") == 2


def _pinned_algorithm(jwk: dict[str, Any]) -> str | None:
    """The one algorithm a JWK may verify, from its key type; ``None`` for a key this server does not take."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    algorithm = {
        "RSA": "RS256",
        "EC": "ES256" if crv == "P-256" else None,
        "OKP": "EdDSA" if crv == "Ed25519" else None,
    }
    pinned = algorithm.get(kty) if isinstance(kty, str) else None
    if pinned is None or jwk.get("alg", pinned) != pinned or jwk.get("use", "sig") != "sig":
        return None
    return pinned


def _parse_jwks(data: bytes, source: str) -> dict[str, jwt.PyJWK]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise JwksError(f"{source} is not JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JwksError(f'{source} is not a JWKS (a JSON object with "keys": [...])')
    found: dict[str, jwt.PyJWK] = {}
    for entry in keys:
        kid = entry.get("kid") if isinstance(entry, dict) else None
        pinned = _pinned_algorithm(entry) if isinstance(kid, str) else None
        if kid is None or pinned is None:
            continue  # no kid, or a key type or algorithm this server refuses: never usable
        try:
            found[kid] = jwt.PyJWK(entry, algorithm=pinned)
        except jwt.PyJWTError:  # InvalidKeyError for a malformed key
            _log.warning("skipping JWKS key %r: not a valid %s key", kid, pinned)
    return found


def _fetch_https(url: str, ca_file: Path | None) -> bytes:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    with urllib.request.urlopen(url, timeout=_FETCH_TIMEOUT_S, context=context) as response:  # noqa: S310 - https only
        data: bytes = response.read(_MAX_JWKS_BYTES + 1)
    if len(data) > _MAX_JWKS_BYTES:
        raise JwksError(f"{url} is larger than {_MAX_JWKS_BYTES} bytes")
    return data


class JwtVerifier:
    """Checks JWTs against ``JOURNAL_JWT_SECRET`` and the cached JWKS. Public method: :meth:`verify`."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret is not None else None
        self._source = settings.jwks_url
        self._ca_file = settings.jwks_ca_file
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway_s = settings.jwt_leeway_s
        self._refetch_s = settings.jwks_refetch_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def start(self) -> None:
        """Load the JWKS, if one is configured; raise :class:`JwksError` if it cannot be."""
        if self._source is not None:
            self._keys = await self._fetch()

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, once its signature, algorithm, audience, issuer and times are checked; raise
        :class:`ProtocolError` (``unauthorized`` or ``token_expired``) otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise _refused("the token is not a well-formed JWT") from None
        kid = header.get("kid")
        key: jwt.PyJWK | str | None
        if kid is not None:
            if self._source is None:
                raise _refused("the token names a key (kid) but this server has no JOURNAL_JWKS_URL")
            key = await self._key(str(kid))
            if key is None:
                raise _refused("the token's key (kid) is not in the identity provider's key set")
            algorithm = key.algorithm_name
        else:
            if self._secret is None:
                raise _refused("the token names no key (kid) and this server has no JOURNAL_JWT_SECRET")
            key, algorithm = self._secret, "HS256"
        required = ["exp", "aud", *(["iss"] if self._issuer is not None else [])]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            raise ProtocolError("token_expired", "the token has expired; get a new one and resubscribe") from None
        except jwt.ImmatureSignatureError:
            raise _refused("the token is not valid yet (nbf or iat in the future); check the clocks") from None
        except jwt.InvalidAudienceError:
            raise _refused(f"the token is not for this audience ({self._audience})") from None
        except jwt.InvalidIssuerError:
            raise _refused("the token is not from the configured issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _refused(f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise _refused(f"the token's algorithm is not {algorithm}, the only one its key allows") from None
        except jwt.InvalidTokenError:
            raise _refused("the token's signature or claims are invalid") from None
        return claims

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        """The key ``kid``; an unknown one fetches the set again, at most once per ``JOURNAL_JWKS_REFETCH_S``."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:  # concurrent unknown kids wait for one fetch, then look again
            if time.monotonic() - self._fetched_at >= self._refetch_s:
                try:
                    self._keys = await self._fetch()
                except JwksError as exc:
                    _log.warning("refetching the JWKS failed (%s); keeping the keys it had", exc)
            return self._keys.get(kid)

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        source = self._source
        assert source is not None
        self._fetched_at = time.monotonic()  # failures too: a failing provider is not hammered
        self.fetches += 1
        try:
            if source.startswith("https://"):
                data = await asyncio.to_thread(_fetch_https, source, self._ca_file)
            else:
                path = Path(url2pathname(urlsplit(source).path)) if source.startswith("file://") else Path(source)
                data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise JwksError(f"cannot read the JWKS from {source} ({exc})") from exc
        return _parse_jwks(data, source)


def _refused(message: str) -> ProtocolError:
    return ProtocolError("unauthorized", message)
