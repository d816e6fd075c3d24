"""Real credentials for the access tests: keys made in the test (RSA, EC P-256, Ed25519, HMAC), JWTs signed with
PyJWT, JWKS documents, and API keys made by the real ``journal keys`` code."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from journal_api.access.grants import Grant
from journal_api.access.keys import create_key

__all__ = ["SECRET", "Signer", "claims", "ec_signer", "ed_signer", "make_key", "rsa_signer", "sign", "write_jwks"]

SECRET = "jwt-secret-for-tests-0123456789-abcdef"  # at least 32 characters, as JOURNAL_JWT_SECRET must be


@dataclass
class Signer:
    """A private key, the algorithm it signs with, and its kid."""

    private: Any
    algorithm: str
    kid: str

    def jwk(self) -> dict[str, Any]:
        """The public half as a JWK (with its kid, without alg: the server pins the algorithm by key type)."""
        public = self.private.public_key()
        exporter: Any = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[self.algorithm]
        document: dict[str, Any] = exporter.to_jwk(public, as_dict=True)
        return document | {"kid": self.kid}


def rsa_signer(kid: str = "rsa-1") -> Signer:
    return Signer(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", kid)


def ec_signer(kid: str = "ec-1") -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()), "ES256", kid)


def ed_signer(kid: str = "ed-1") -> Signer:
    return Signer(ed25519.Ed25519PrivateKey.generate(), "EdDSA", kid)


def write_jwks(path: Path, *signers: Signer) -> Path:
    path.write_text(json.dumps({"keys": [signer.jwk() for signer in signers]}))
    return path


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid claim set (sub alice, aud journal, five minutes left, full grant) with ``overrides``; a value of
    ``None`` removes the claim."""
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "aud": "journal", "iat": now, "exp": now + 300, "journal": {}}
    merged = base | overrides
    return {name: value for name, value in merged.items() if value is not None}


def sign(key: Signer | str, payload: dict[str, Any], **headers: Any) -> str:
    """A JWT: signed by ``key`` (a :class:`Signer`, with its kid) or HS256 with the secret ``key``."""
    if isinstance(key, str):
        return jwt.encode(payload, key, algorithm="HS256", headers=headers or None)
    return jwt.encode(payload, key.private, algorithm=key.algorithm, headers={"kid": key.kid, **headers})


async def make_key(db_url: str, name: str, grant: Grant | None = None, expires_at: Any = None) -> str:
    """An API key stored by the real code, as ``journal keys create`` stores it."""
    conn = await asyncpg.connect(db_url)
    try:
        return await create_key(conn, name, grant or Grant(), expires_at)
    finally:
        await conn.close()
