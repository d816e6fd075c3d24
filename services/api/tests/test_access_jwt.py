"""JWTs (docs/60_ACCESS.md#jwts-from-an-identity-provider): every bad-token class gets its documented code and
leaves other sessions untouched; RS256, ES256, EdDSA and HS256 tokens with grants; the JWKS from a file or https."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hmac
import http.server
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from journal_api.access.jwts import JwtVerifier
from journal_api.stream.app import create_app
from journal_api.stream.protocol import ProtocolError
from journal_api.stream.settings import Settings

from .conftest import Connect, MakeSettings, StartServer, write
from .tokens import SECRET, Signer, ec_signer, ed_signer, rsa_signer, sign, write_jwks
from .tokens import claims as any_claims

RSA, EC, ED = rsa_signer(), ec_signer(), ed_signer()
ISSUER = "https://idp.example"


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims from ISSUER, with ``overrides`` (``None`` removes a claim)."""
    return any_claims(**({"iss": ISSUER} | overrides))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _alg_none() -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims()).encode())}."


def _hs_with_rsa_public_key(kid: str | None) -> str:
    """HS/RS confusion: an HS256 token whose secret is the RSA public key the server trusts."""
    pem = RSA.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims()).encode())}"
    return f"{signing}.{_b64(hmac.new(pem, signing.encode(), 'sha256').digest())}"


def _tampered() -> str:
    head, _, signature = sign(RSA, claims()).split(".")
    forged = _b64(json.dumps(claims(journal={"metrics": True}, sub="mallory")).encode())
    return f"{head}.{forged}.{signature}"


now = int(time.time())
BAD_TOKENS: list[tuple[str, str, str]] = [
    ("expired", sign(RSA, claims(exp=now - 60)), "token_expired"),
    ("not yet valid (nbf)", sign(RSA, claims(nbf=now + 3600)), "unauthorized"),
    ("issued in the future (iat)", sign(EC, claims(iat=now + 3600)), "unauthorized"),
    ("wrong audience", sign(RSA, claims(aud="billing")), "unauthorized"),
    ("no audience", sign(RSA, claims(aud=None)), "unauthorized"),
    ("wrong issuer", sign(RSA, claims(iss="https://evil.example")), "unauthorized"),
    ("no exp", sign(SECRET, claims(exp=None)), "unauthorized"),
    ("no issuer", sign(SECRET, claims(iss=None)), "unauthorized"),
    ("alg none", _alg_none(), "unauthorized"),
    ("HS/RS confusion with kid", _hs_with_rsa_public_key(RSA.kid), "unauthorized"),
    ("HS/RS confusion without kid", _hs_with_rsa_public_key(None), "unauthorized"),
    ("unknown kid", sign(rsa_signer("stranger"), claims()), "unauthorized"),
    ("tampered payload", _tampered(), "unauthorized"),
    ("wrong HMAC secret", sign("another-secret-0123456789-0123456789", claims()), "unauthorized"),
    ("no journal claim", sign(ED, claims(journal=None)), "unauthorized"),
    ("a journal claim that is no grant", sign(ED, claims(journal={"channels": ["nope"]})), "unauthorized"),
    ("a journal claim that is no object", sign(ED, claims(journal=["trades"])), "unauthorized"),
    ("revoked jti", sign(RSA, claims(jti="leaked-1")), "token_revoked"),
    ("not a JWT at all", "eyJub3QiOiJqc29uIn0.eyJ.x", "unauthorized"),
]


@pytest.fixture
def jwks(tmp_path: Path) -> Path:
    return write_jwks(tmp_path / "jwks.json", RSA, EC, ED)


async def test_every_bad_token_gets_its_code_and_leaves_other_sessions_untouched(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect, jwks: Path
) -> None:
    """Each class of bad token is refused with its documented code (4401); a session subscribed meanwhile with a
    good token keeps streaming."""
    await conn.execute("INSERT INTO revoked_tokens (jti) VALUES ('leaked-1')")
    settings = {"jwt_secret": SECRET, "jwks_url": str(jwks), "jwt_issuer": ISSUER}
    async with journal_server(**settings) as server, connect(server.url) as bystander:
        await bystander.subscribe(token=sign(RSA, claims(jti="fine")), cursor=None)
        outcomes = {}
        for name, token, _ in BAD_TOKENS:
            async with connect(server.url) as client:
                await client.send({"op": "subscribe", "token": token})
                code, frames = await client.closed()
            outcomes[name] = (code, [frame["code"] for frame in frames])
        [written] = await write(conn)
        [event] = await bystander.events_through(written)
    assert outcomes == {name: (4401, [error]) for name, _, error in BAD_TOKENS}
    assert int(event["id"]) == written


async def test_the_issuer_is_checked_when_configured(journal_server: StartServer, connect: Connect, jwks: Path) -> None:
    """With JOURNAL_JWT_ISSUER, `iss` must be present and equal; a token from it is served."""
    async with journal_server(jwks_url=str(jwks), jwt_issuer=ISSUER) as server:
        for token in (sign(RSA, claims(iss=None)), sign(RSA, claims(iss="https://other.example"))):
            async with connect(server.url) as client:
                await client.send({"op": "subscribe", "token": token})
                code, frames = await client.closed()
            assert (code, frames[0]["code"]) == (4401, "unauthorized")
        async with connect(server.url) as client:
            await client.subscribe(token=sign(RSA, claims()))


@pytest.mark.parametrize("signer", [RSA, EC, ED, SECRET], ids=["RS256", "ES256", "EdDSA", "HS256"])
async def test_each_algorithm_with_its_grant_is_enforced_on_replay_and_live(
    conn: asyncpg.Connection, journal_server: StartServer, connect: Connect, jwks: Path, signer: Any
) -> None:
    """A token scoped to trades of BTC-USD sees exactly those, replayed and live, whatever signed it."""
    token = sign(signer, claims(journal={"channels": ["trades"], "symbols": ["BTC-USD"]}))
    await write(conn, type="trade.filled", symbol="ETH-USD")
    replayed = await write(conn, type="trade.filled", symbol="BTC-USD")
    async with (
        journal_server(jwt_secret=SECRET, jwks_url=str(jwks)) as server,
        connect(server.url, additional_headers={"Authorization": f"Bearer {token}"}) as client,
    ):
        await client.subscribe(token=None, cursor="0")
        assert [int(e["id"]) for e in await client.events_through(replayed[0])] == replayed
        await write(conn, type="order.submitted", symbol="BTC-USD")
        live = await write(conn, type="trade.filled", symbol="BTC-USD")
        assert [int(e["id"]) for e in await client.events_through(live[0])] == live
        await client.send({"op": "subscribe", "token": token})  # nothing else after subscribing: 4400
        code, _ = await client.closed()
        assert code == 4400


async def test_a_new_kid_is_fetched_once_and_made_up_kids_are_rate_limited(
    make_settings: MakeSettings, jwks: Path
) -> None:
    """A rotated key is found by refetching the JWKS, but no sooner than JOURNAL_JWKS_REFETCH_S after the last
    fetch: however many tokens with unknown kids come meanwhile, they cost no fetch."""
    verifier = JwtVerifier(make_settings(jwks_url=str(jwks), jwks_refetch_s=0.3))
    await verifier.start()
    rotated = rsa_signer("rsa-2")
    unknown = [sign(Signer(rotated.private, "RS256", f"made-up-{n}"), claims()) for n in range(20)]
    write_jwks(jwks, RSA, rotated)
    refusals: list[str] = []
    async with asyncio.timeout(30):
        while True:  # until the interval has passed and the rotated key was fetched
            try:
                accepted = await verifier.verify(sign(rotated, claims()))
                break
            except ProtocolError as error:
                refusals.append(error.message)
            await asyncio.sleep(0.01)
    assert set(refusals) == {"the token's key (kid) is not in the identity provider's key set"}
    assert accepted["sub"] == "alice"
    assert len(refusals) > 1  # tried within the interval, refused without a fetch
    assert verifier.fetches == 2  # the start, and one refetch for every attempt since
    results = await asyncio.gather(*(verifier.verify(token) for token in unknown), return_exceptions=True)
    assert all(isinstance(result, ProtocolError) and result.code == "unauthorized" for result in results)
    assert verifier.fetches == 2  # twenty made-up kids within the interval: no fetch


async def until_fetched(verifier: JwtVerifier, token: str, fetches: int) -> None:
    """Present ``token`` (refused) until the verifier has fetched ``fetches`` times."""
    async with asyncio.timeout(30):
        while verifier.fetches < fetches:
            with pytest.raises(ProtocolError):
                await verifier.verify(token)
            await asyncio.sleep(0.01)


async def test_a_jwks_file_may_be_named_by_a_file_url(make_settings: MakeSettings, jwks: Path) -> None:
    verifier = JwtVerifier(make_settings(jwks_url=jwks.as_uri()))
    await verifier.start()
    assert (await verifier.verify(sign(EC, claims())))["sub"] == "alice"


async def test_a_failed_refetch_keeps_the_old_keys(make_settings: MakeSettings, jwks: Path) -> None:
    """A JWKS that became unreadable or malformed keeps the keys fetched before."""
    verifier = JwtVerifier(make_settings(jwks_url=str(jwks), jwks_refetch_s=0.01))
    await verifier.start()
    await asyncio.to_thread(jwks.write_text, "not json")
    await until_fetched(verifier, sign(rsa_signer("new"), claims()), 2)
    await asyncio.to_thread(jwks.unlink)
    await until_fetched(verifier, sign(rsa_signer("newer"), claims()), 3)
    assert (await verifier.verify(sign(RSA, claims())))["sub"] == "alice"


async def test_jwks_keys_the_server_does_not_take_are_skipped(make_settings: MakeSettings, tmp_path: Path) -> None:
    """Symmetric keys, other curves, a JWK whose alg disagrees with its type, encryption keys, keys without kid."""
    path = tmp_path / "jwks.json"
    odd = [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        EC.jwk() | {"kid": "p384", "crv": "P-384"},
        RSA.jwk() | {"kid": "says-hs", "alg": "HS256"},
        RSA.jwk() | {"kid": "enc", "use": "enc"},
        {key: value for key, value in RSA.jwk().items() if key != "kid"},
        RSA.jwk() | {"kid": "broken", "n": "AA"},
        "not a key",
    ]
    path.write_text(json.dumps({"keys": [*odd, ED.jwk()]}))
    verifier = JwtVerifier(make_settings(jwks_url=str(path)))
    await verifier.start()
    assert (await verifier.verify(sign(ED, claims())))["sub"] == "alice"
    for kid in ("hmac", "p384", "says-hs", "enc", "broken"):
        with pytest.raises(ProtocolError, match="not in the identity provider's key set"):
            await verifier.verify(sign(rsa_signer(kid), claims()))


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read the JWKS from"), ("[1]", "is not a JWKS"), ("{", "is not JSON")],
)
async def test_a_jwks_that_cannot_be_loaded_stops_the_server(
    make_settings: MakeSettings, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content)
    app = create_app(make_settings(jwks_url=str(path)))
    with pytest.raises(RuntimeError, match=message):
        async with app.router.lifespan_context(app):
            raise AssertionError("started without its JWKS")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"jwks_url": "http://idp.example/jwks"}, "use an https:// URL or a file path"),
        ({"jwt_secret": "short"}, "at least 32 characters"),
        ({"token_grace_s": 6}, "less than or equal to 5"),
    ],
)
def test_bad_jwt_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(database_url="postgresql://db/j", **fields)  # type: ignore[arg-type]


async def test_tokens_of_a_kind_the_server_is_not_configured_for_are_refused(
    journal_server: StartServer, connect: Connect, jwks: Path
) -> None:
    """No JWT settings: a JWT is refused; a secret only: a token with a kid is refused; and the reverse."""
    async with journal_server() as server, connect(server.url) as client:
        await client.send({"op": "subscribe", "token": sign(SECRET, claims())})
        code, frames = await client.closed()
    assert (code, frames[0]["message"]) == (
        4401,
        "this server takes no JWTs (no JOURNAL_JWT_SECRET or JOURNAL_JWKS_URL)",
    )
    async with journal_server(jwt_secret=SECRET) as server, connect(server.url) as client:
        await client.send({"op": "subscribe", "token": sign(RSA, claims())})
        code, frames = await client.closed()
    assert (code, frames[0]["message"]) == (4401, "the token names a key (kid) but this server has no JOURNAL_JWKS_URL")
    async with journal_server(jwks_url=str(jwks)) as server, connect(server.url) as client:
        await client.send({"op": "subscribe", "token": sign(SECRET, claims())})
        code, frames = await client.closed()
    assert (code, frames[0]["message"]) == (
        4401,
        "the token names no key (kid) and this server has no JOURNAL_JWT_SECRET",
    )


# --- the JWKS over https, trusted through JOURNAL_JWKS_CA_FILE ---------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def https_jwks(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real https server on localhost serving the JWKS, with a certificate made here; its URL and the cert."""
    document = json.dumps({"keys": [RSA.jwk()]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: object) -> None:
            pass

    cert, key = _self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/jwks.json", cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_the_jwks_is_fetched_over_https_trusting_the_configured_ca(
    https_jwks: tuple[str, Path], journal_server: StartServer, connect: Connect, make_settings: MakeSettings
) -> None:
    """With JOURNAL_JWKS_CA_FILE the server fetches the JWKS over https and takes its tokens; without it the
    self-signed certificate is not trusted and the server does not start."""
    url, cert = https_jwks
    async with journal_server(jwks_url=url, jwks_ca_file=str(cert)) as server, connect(server.url) as client:
        await client.subscribe(token=sign(RSA, claims()))
    app = create_app(make_settings(jwks_url=url))
    with pytest.raises(RuntimeError, match="CERTIFICATE_VERIFY_FAILED"):
        async with app.router.lifespan_context(app):
            raise AssertionError("trusted a self-signed certificate")


async def test_a_jwks_over_the_size_limit_is_refused(make_settings: MakeSettings, https_jwks: tuple[str, Path]) -> None:
    """An identity provider that sends more than 1 MiB is not read to the end."""
    from journal_api.access import jwts

    url, cert = https_jwks
    limit = jwts._MAX_JWKS_BYTES
    jwts._MAX_JWKS_BYTES = 10
    try:
        verifier = JwtVerifier(make_settings(jwks_url=url, jwks_ca_file=str(cert)))
        with pytest.raises(jwts.JwksError, match="is larger than 10 bytes"):
            await verifier.start()
    finally:
        jwts._MAX_JWKS_BYTES = limit
