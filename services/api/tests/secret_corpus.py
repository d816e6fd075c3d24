"""Secret-shaped samples generated at test time from public format descriptions, and benign trading values.

Nothing here is a real secret, and no literal that looks like one is committed: every sample is built from a
format's description (prefix, alphabet, length; checksums where the format has one: base58check for WIF and
extended keys, the BIP-39 checksum over the real English wordlist) with a seeded generator.

A sample is ``(kind, text, secret)``: ``text`` is what a writer leaked, ``secret`` the part of it that must read
``[REDACTED]`` (the whole text for a bare token; the password of a URL; the value of an assignment).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from collections.abc import Callable
from importlib.resources import files

__all__ = ["BENIGN", "KINDS", "Sample", "samples"]

Sample = tuple[str, str, str]

B62 = string.ascii_letters + string.digits
URLSAFE = B62 + "_-"
B64 = B62 + "+/"
HEX = "0123456789abcdef"
UPPERNUM = string.ascii_uppercase + string.digits
LOWERNUM = string.ascii_lowercase + string.digits
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
WORDS = files("journal_api.journal").joinpath("bip39_english.txt").read_text("ascii").split()


def _run(rng: random.Random, alphabet: str, size: int) -> str:
    """Random characters; a run meant to look random has upper case, lower case and a digit when it can."""
    while True:
        text = "".join(rng.choice(alphabet) for _ in range(size))
        kinds = [any(c.isupper() for c in text), any(c.islower() for c in text), any(c.isdigit() for c in text)]
        wanted = [
            any(c.isupper() for c in alphabet),
            any(c.islower() for c in alphabet),
            any(c.isdigit() for c in alphabet),
        ]
        if kinds == wanted or size < 12:
            return text


def b58encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = B58[digit] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def b58check(payload: bytes) -> str:
    return b58encode(payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4])


def _wif(rng: random.Random, version: int, compressed: bool) -> str:
    return b58check(bytes([version]) + rng.randbytes(32) + (b"\x01" if compressed else b""))


def _extended(rng: random.Random, version: int) -> str:
    body = version.to_bytes(4, "big") + bytes([3]) + rng.randbytes(4) + rng.randbytes(4) + rng.randbytes(32)
    return b58check(body + b"\0" + rng.randbytes(32))


def _mnemonic(rng: random.Random, words: int, checksum: bool = True) -> str:
    entropy = rng.randbytes(words * 4 // 3)
    bits = bin(int.from_bytes(entropy, "big"))[2:].zfill(len(entropy) * 8)
    if checksum:
        bits += bin(hashlib.sha256(entropy).digest()[0])[2:].zfill(8)[: len(entropy) // 4]
    else:
        bits += "".join(rng.choice("01") for _ in range(len(entropy) // 4))
    return " ".join(WORDS[int(bits[i : i + 11], 2)] for i in range(0, len(bits), 11))


def _uuid(rng: random.Random) -> str:
    h = _run(rng, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _pem(rng: random.Random, kind: str) -> str:
    body = "\n".join(_run(rng, B64, 64) for _ in range(4))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


def _putty(rng: random.Random) -> tuple[str, str]:
    private = f"Private-Lines: 14\n{_run(rng, B64, 64)}\nPrivate-MAC: {_run(rng, HEX, 40)}"
    return f"PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\n{private}", private


def _ansible(rng: random.Random) -> tuple[str, str]:
    body = "".join("\n" + _run(rng, HEX, 80) for _ in range(4))
    return "$ANSIBLE_VAULT;1.1;AES256" + body, body


def _htpasswd(rng: random.Random) -> tuple[str, str]:
    hashed = f"$apr1${_run(rng, B62, 8)}${_run(rng, B62 + './', 22)}"
    return f"admin:{hashed}", hashed


def _b64url_json(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _jwt(rng: random.Random, parts: int) -> str:
    header = _b64url_json({"alg": "HS256", "typ": "JWT", "kid": _run(rng, B62, 8)})
    claims = _b64url_json({"sub": _run(rng, LOWERNUM, 12), "exp": rng.randrange(1_700_000_000, 1_900_000_000)})
    if parts == 2:
        return f"{header}.{claims}"
    if parts == 5:  # JWE: header, encrypted key, iv, ciphertext, tag
        return ".".join([header, *(_run(rng, URLSAFE, n) for n in (43, 22, 40, 22))])
    return f"{header}.{claims}.{_run(rng, URLSAFE, 43)}"


def _token(prefix: str, alphabet: str, size: int, suffix: str = "") -> Callable[[random.Random], Sample]:
    return lambda rng: ("", prefix + _run(rng, alphabet, size) + suffix, "")


def _whole(make: Callable[[random.Random], str]) -> Callable[[random.Random], Sample]:
    return lambda rng: ("", make(rng), "")


def _part(make: Callable[[random.Random], tuple[str, str]]) -> Callable[[random.Random], Sample]:
    def build(rng: random.Random) -> Sample:
        text, secret = make(rng)
        return "", text, secret

    return build


def _url(scheme: str, user: str, host: str) -> Callable[[random.Random], Sample]:
    def build(rng: random.Random) -> Sample:
        password = _run(rng, B62 + "!$*~", 16)
        return "", f"{scheme}://{user}:{password}@{host}", password

    return build


def _assign(template: str, alphabet: str = B62, size: int = 24) -> Callable[[random.Random], Sample]:
    def build(rng: random.Random) -> Sample:
        value = _run(rng, alphabet, size)
        return "", template.format(value), value

    return build


KINDS: dict[str, Callable[[random.Random], Sample]] = {
    # cloud
    "aws-akia": _token("AKIA", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
    "aws-asia": _token("ASIA", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
    "aws-secret-access-key": _whole(lambda rng: _run(rng, B64, 40)),
    "gcp-api-key": _token("AIza", URLSAFE, 35),
    "gcp-oauth-client-secret": _token("GOCSPX-", URLSAFE, 28),
    "gcp-access-token": _token("ya29.", URLSAFE, 90),
    "azure-ad-client-secret": _whole(lambda rng: _run(rng, B62, 3) + "8Q~" + _run(rng, URLSAFE + "~.", 34)),
    "digitalocean-pat": _token("dop_v1_", HEX, 64),
    "digitalocean-oauth": _token("doo_v1_", HEX, 64),
    "alibaba-key-id": _token("LTAI", B62, 20),
    "yandex-api-key": _token("AQVN", URLSAFE, 36),
    "heroku-api-key-v2": _token("HRKU-AA", URLSAFE, 58),
    "heroku-api-key-uuid": _whole(_uuid),
    "flyio-token": _token("fo1_", URLSAFE, 43),
    "tailscale-key": _whole(lambda rng: f"tskey-api-{_run(rng, B62, 12)}-{_run(rng, B62, 30)}"),
    "vault-service-token": _token("hvs.", URLSAFE, 90),
    "vault-batch-token": _token("hvb.", URLSAFE, 138),
    "terraform-token": _whole(lambda rng: _run(rng, B62, 14) + ".atlasv1." + _run(rng, URLSAFE, 67)),
    "pulumi-token": _token("pul-", HEX, 40),
    "doppler-token": _token("dp.pt.", B62, 43),
    "databricks-token": _token("dapi", HEX, 32),
    "planetscale-token": _token("pscale_tkn_", URLSAFE, 43),
    "planetscale-password": _token("pscale_pw_", URLSAFE, 43),
    "prefect-token": _token("pnu_", B62, 36),
    "age-secret-key": _token("AGE-SECRET-KEY-1", BECH32, 58),
    "openshift-token": _token("sha256~", URLSAFE, 43),
    "jfrog-token": _token("AKCp", B62, 69),
    "sourcegraph-token": _token("sgp_", HEX, 40),
    "infracost-key": _token("ico-", B62, 32),
    "scalingo-token": _token("tk-us-", URLSAFE, 48),
    "settlemint-token": _token("sm_pat_", B62, 16),
    "clojars-token": _token("CLOJARS_", LOWERNUM, 60),
    "dynatrace-token": _whole(lambda rng: f"dt0c01.{_run(rng, UPPERNUM, 24)}.{_run(rng, UPPERNUM, 64)}"),
    "easypost-key": _token("EZAK", B62, 54),
    "supabase-token": _token("sbp_", HEX, 40),
    "vercel-token": _token("vcp_", B62, 56),
    # code hosting and packages
    "github-pat": _token("ghp_", B62, 36),
    "github-oauth": _token("gho_", B62, 36),
    "github-user-to-server": _token("ghu_", B62, 36),
    "github-server-to-server": _token("ghs_", B62, 36),
    "github-refresh": _token("ghr_", B62, 36),
    "github-fine-grained-pat": _whole(lambda rng: f"github_pat_{_run(rng, B62, 22)}_{_run(rng, B62, 59)}"),
    "gitlab-pat": _token("glpat-", URLSAFE, 20),
    "gitlab-deploy-token": _token("gldt-", URLSAFE, 20),
    "gitlab-runner-token": _token("glrt-", URLSAFE, 20),
    "gitlab-ci-build-token": _token("glcbt-", URLSAFE, 24),
    "gitlab-runner-registration": _token("GR1348941", URLSAFE, 20),
    "bitbucket-app-password": _token("ATBB", B62, 32),
    "atlassian-api-token": _token("ATATT3", URLSAFE, 186),
    "npm-token": _token("npm_", B62, 36),
    "pypi-token": _token("pypi-AgEIcHlwaS5vcmc", URLSAFE, 70),
    "rubygems-key": _token("rubygems_", HEX, 48),
    "nuget-key": _token("oy2", LOWERNUM, 43),
    "linear-api-key": _token("lin_api_", B62, 40),
    "postman-key": _whole(lambda rng: f"PMAK-{_run(rng, HEX, 24)}-{_run(rng, HEX, 34)}"),
    "readme-key": _token("rdme_", LOWERNUM, 70),
    "contentful-token": _token("CFPAT-", URLSAFE, 43),
    "figma-token": _token("figd_", URLSAFE, 40),
    "typeform-token": _token("tfp_", URLSAFE, 59),
    "adobe-client-secret": _token("p8e-", B62, 32),
    "airtable-token": _whole(lambda rng: f"pat{_run(rng, B62, 14)}.{_run(rng, HEX, 64)}"),
    "notion-token": _whole(lambda rng: f"ntn_{_run(rng, string.digits, 11)}{_run(rng, B62, 35)}"),
    # chat
    "slack-bot-token": _whole(
        lambda rng: f"xoxb-{_run(rng, string.digits, 12)}-{_run(rng, string.digits, 13)}-{_run(rng, B62, 24)}"
    ),
    "slack-user-token": _whole(
        lambda rng: "xoxp-" + "-".join(_run(rng, string.digits, n) for n in (12, 12, 13)) + "-" + _run(rng, HEX, 32)
    ),
    "slack-app-token": _whole(
        lambda rng: f"xapp-1-A{_run(rng, UPPERNUM, 10)}-{_run(rng, string.digits, 13)}-{_run(rng, HEX, 64)}"
    ),
    "slack-webhook": _part(
        lambda rng: (
            "https://hooks.slack.com/services/"
            + (s := f"T{_run(rng, UPPERNUM, 8)}/B{_run(rng, UPPERNUM, 10)}/{_run(rng, B62, 24)}"),
            s,
        )
    ),
    "discord-bot-token": _whole(lambda rng: f"M{_run(rng, B62, 25)}.{_run(rng, URLSAFE, 6)}.{_run(rng, URLSAFE, 38)}"),
    "discord-webhook": _part(
        lambda rng: (
            f"https://discord.com/api/webhooks/{(s := _run(rng, string.digits, 18) + '/' + _run(rng, URLSAFE, 68))}",
            s,
        )
    ),
    "telegram-bot-token": _whole(lambda rng: f"{_run(rng, string.digits, 10)}:AA{_run(rng, URLSAFE, 33)}"),
    "teams-webhook": _part(
        lambda rng: (
            "https://acme.webhook.office.com/webhookb2/"
            + (s := f"{_uuid(rng)}@{_uuid(rng)}/IncomingWebhook/{_run(rng, HEX, 32)}/{_uuid(rng)}"),
            s,
        )
    ),
    "twitter-bearer": _token("AAAAAAAAAAAAAAAAAAAAA", B62, 80),
    "facebook-token": _token("EAAC", B62, 150),
    # payment
    "stripe-live-secret": _token("sk_live_", B62, 24),
    "stripe-test-secret": _token("sk_test_", B62, 99),
    "stripe-restricted": _token("rk_live_", B62, 24),
    "stripe-webhook-secret": _token("whsec_", B62, 32),
    "square-access-token": _token("sq0atp-", URLSAFE, 22),
    "square-oauth-secret": _token("sq0csp-", URLSAFE, 43),
    "shopify-access-token": _token("shpat_", HEX, 32),
    "shopify-shared-secret": _token("shpss_", HEX, 32),
    "shopify-custom-app": _token("shpca_", HEX, 32),
    "braintree-token": _whole(lambda rng: f"access_token$production${_run(rng, LOWERNUM, 16)}${_run(rng, HEX, 32)}"),
    "razorpay-key": _token("rzp_live_", B62, 14),
    "flutterwave-secret": _whole(lambda rng: f"FLWSECK_TEST-{_run(rng, HEX, 32)}-X"),
    "duffel-token": _token("duffel_live_", URLSAFE, 43),
    "shippo-token": _token("shippo_live_", HEX, 40),
    # AI
    "openai-project-key": _whole(lambda rng: f"sk-proj-{_run(rng, URLSAFE, 74)}T3BlbkFJ{_run(rng, URLSAFE, 74)}"),
    "openai-legacy-key": _whole(lambda rng: f"sk-{_run(rng, B62, 20)}T3BlbkFJ{_run(rng, B62, 20)}"),
    "anthropic-api-key": _whole(lambda rng: f"sk-ant-api03-{_run(rng, URLSAFE, 93)}AA"),
    "anthropic-admin-key": _whole(lambda rng: f"sk-ant-admin01-{_run(rng, URLSAFE, 93)}AA"),
    "huggingface-token": _token("hf_", string.ascii_letters, 34),
    "groq-api-key": _token("gsk_", B62, 52),
    "perplexity-api-key": _token("pplx-", B62, 48),
    "replicate-token": _token("r8_", B62, 37),
    "xai-api-key": _token("xai-", B62, 80),
    "langsmith-key": _whole(lambda rng: f"lsv2_pt_{_run(rng, HEX, 32)}_{_run(rng, HEX, 10)}"),
    # monitoring and mail
    "sentry-user-token": _token("sntryu_", HEX, 64),
    "newrelic-user-key": _token("NRAK-", UPPERNUM, 27),
    "grafana-cloud-token": _token("glc_", B64, 80),
    "grafana-service-account": _whole(lambda rng: f"glsa_{_run(rng, B62, 32)}_{_run(rng, HEX, 8)}"),
    "sendgrid-api-key": _whole(lambda rng: f"SG.{_run(rng, URLSAFE, 22)}.{_run(rng, URLSAFE, 43)}"),
    "twilio-api-key": _token("SK", HEX, 32),
    "mailgun-key": _token("key-", HEX, 32),
    "mailchimp-key": _whole(lambda rng: f"{_run(rng, HEX, 32)}-us{rng.randrange(1, 21)}"),
    "brevo-key": _whole(lambda rng: f"xkeysib-{_run(rng, HEX, 64)}-{_run(rng, B62, 16)}"),
    "mapbox-secret-token": _whole(lambda rng: f"sk.eyJ1Ijoi{_run(rng, B62, 20)}.{_run(rng, URLSAFE, 22)}"),
    "dropbox-short-lived": _token("sl.", URLSAFE, 135),
    "clickhouse-cloud-key": _token("4b1d", B62, 38),
    "maxmind-license-key": _whole(lambda rng: f"{_run(rng, B62, 6)}_{_run(rng, B62, 29)}_mmk"),
    "hubspot-private-app": _whole(lambda rng: f"pat-na1-{_uuid(rng)}"),
    "plaid-access-token": _whole(lambda rng: f"access-production-{_uuid(rng)}"),
    "sonarqube-token": _token("squ_", HEX, 40),
    "salesforce-token": _whole(lambda rng: f"00D{_run(rng, B62, 12)}!{_run(rng, B62 + '._', 96)}"),
    "zapier-webhook": _part(
        lambda rng: (
            f"https://hooks.zapier.com/hooks/catch/{(s := _run(rng, '0123456789', 7) + '/' + _run(rng, LOWERNUM, 6))}/",
            s,
        )
    ),
    "ansible-vault": _part(_ansible),
    "bcrypt-hash": _whole(lambda rng: f"$2b$12${_run(rng, B62 + './', 53)}"),
    "sha512-crypt-hash": _whole(lambda rng: f"$6${_run(rng, B62, 16)}${_run(rng, B62 + './', 86)}"),
    "apr1-htpasswd-hash": _part(_htpasswd),
    "argon2-hash": _whole(lambda rng: f"$argon2id$v=19$m=65536,t=3,p=4${_run(rng, B64, 22)}${_run(rng, B64, 43)}"),
    "netrc-password": _assign("machine api.example.com login engine password {}", B62, 20),
    "curl-user-password": _assign("curl -s -u engine:{} https://api.example.com/v1/orders", B62, 20),
    "xml-password": _assign("<config><user>engine</user><password>{}</password></config>", B62, 16),
    "bip39-seed-hex": _whole(lambda rng: _run(rng, HEX, 128)),
    "md5-crypt-hash": _whole(lambda rng: f"$1${_run(rng, B62, 8)}${_run(rng, B62 + './', 22)}"),
    "kerberos-asrep-hash": _whole(
        lambda rng: f"$krb5asrep$23$user@EXAMPLE.COM:{_run(rng, HEX, 32)}${_run(rng, HEX, 200)}"
    ),
    "mysql-password-flag": _assign("mysql -h db.internal -u engine -p{} orders", B62, 16),
    "sshpass-password": _assign("sshpass -p '{}' ssh deploy@host", B62, 16),
    "amazon-mws-token": _whole(lambda rng: f"amzn.mws.{_uuid(rng)}"),
    "dependency-track-key": _token("odt_", B62, 32),
    "dockerhub-pat": _token("dckr_pat_", URLSAFE, 27),
    "mailersend-token": _token("mlsn.", HEX, 64),
    "segment-token": _token("sgp_", B62, 64),
    "pinecone-key": _token("pcsk_", B62 + "_", 70),
    "elevenlabs-key": _token("sk_", HEX, 48),
    # exchanges
    "gemini-api-key": _token("account-", B62, 20),
    "gemini-master-key": _token("master-", B62, 20),
    "binance-secret": _whole(lambda rng: _run(rng, B62, 64)),
    "kraken-api-key": _whole(lambda rng: _run(rng, B64, 56)),
    "kraken-private-key": _whole(lambda rng: base64.b64encode(rng.randbytes(64)).decode()),
    "kucoin-secret": _whole(_uuid),
    "bitfinex-secret": _whole(lambda rng: _run(rng, B62, 43)),
    "bybit-secret": _whole(lambda rng: _run(rng, B62, 36)),
    # private key blocks
    "pem-rsa": _whole(lambda rng: _pem(rng, "RSA PRIVATE KEY")),
    "pem-ec": _whole(lambda rng: _pem(rng, "EC PRIVATE KEY")),
    "pem-pkcs8": _whole(lambda rng: _pem(rng, "PRIVATE KEY")),
    "pem-encrypted": _whole(lambda rng: _pem(rng, "ENCRYPTED PRIVATE KEY")),
    "pem-dsa": _whole(lambda rng: _pem(rng, "DSA PRIVATE KEY")),
    "pem-openssh": _whole(lambda rng: _pem(rng, "OPENSSH PRIVATE KEY")),
    "pgp-private-key-block": _whole(lambda rng: _pem(rng, "PGP PRIVATE KEY BLOCK")),
    "pem-cut-short": _whole(lambda rng: _pem(rng, "PRIVATE KEY")[:150]),
    "pem-base64": _whole(lambda rng: base64.b64encode(_pem(rng, "PRIVATE KEY").encode()).decode()),
    "putty-private-key": _part(_putty),
    # JWT and authorization values
    "jwt": _whole(lambda rng: _jwt(rng, 3)),
    "jwt-two-part": _whole(lambda rng: _jwt(rng, 2)),
    "jwt-unsigned": _whole(lambda rng: _jwt(rng, 2) + "."),
    "jwe": _whole(lambda rng: _jwt(rng, 5)),
    "authorization-bearer": _whole(lambda rng: f"Bearer {_run(rng, URLSAFE, 40)}"),
    "authorization-basic": _whole(
        lambda rng: "Basic " + base64.b64encode(f"{_run(rng, LOWERNUM, 8)}:{_run(rng, B62, 14)}".encode()).decode()
    ),
    "authorization-token": _whole(lambda rng: f"Token {_run(rng, HEX, 40)}"),
    # credential URLs
    "postgres-url": _url("postgres", "app", "db.internal:5432/journal"),
    "mysql-url": _url("mysql", "root", "10.0.0.7:3306/orders"),
    "mongodb-srv-url": _url("mongodb+srv", "trader", "cluster0.example.net/?retryWrites=true"),
    "redis-url": _url("redis", "", "cache.internal:6379/0"),
    "amqp-url": _url("amqps", "engine", "broker.internal:5671/vhost"),
    "https-basic-url": _url("https", "bot", "venue.example.com/api/v1/orders"),
    "ftp-url": _url("ftp", "reports", "files.example.com/daily"),
    # assignments in free text
    "env-api-key": _assign("API_KEY={}"),
    "yaml-secret": _assign("secret: {}"),
    "query-apikey": _assign("https://api.example.com/v1/ticker?apikey={}&symbol=BTCUSD"),
    "embedded-json-password": _assign('{{"user": "engine", "password":"{}"}}', B62 + "!#%", 14),
    "client-secret-assignment": _assign("client_secret={}", URLSAFE, 32),
    "aws-secret-assignment": _assign("aws_secret_access_key = {}", B64, 40),
    "quoted-db-password": _assign("DB_PASSWORD='{}'", B62 + "@!", 12),
    "aws-signature-param": _assign(
        "https://bucket.s3.amazonaws.com/report.csv?X-Amz-Signature={}&X-Amz-Expires=300", HEX, 64
    ),
    "access-token-json": _assign('{{"access_token": "{}"}}', URLSAFE, 40),
    "connection-string-password": _assign("Server=db;Database=orders;User Id=app;Password={};", B62, 16),
    "session-cookie": _assign("Set-Cookie: session={}; Path=/; HttpOnly", URLSAFE, 32),
    # crypto keys
    "evm-private-key": _whole(lambda rng: "0x" + _run(rng, HEX, 64)),
    "raw-hex-private-key": _whole(lambda rng: _run(rng, HEX, 64)),
    "bip39-12-words": _whole(lambda rng: _mnemonic(rng, 12)),
    "bip39-24-words": _whole(lambda rng: _mnemonic(rng, 24)),
    "bip39-18-words-no-checksum": _whole(lambda rng: _mnemonic(rng, 18, checksum=False)),
    "wif-uncompressed": _whole(lambda rng: _wif(rng, 0x80, False)),
    "wif-compressed": _whole(lambda rng: _wif(rng, 0x80, True)),
    "wif-testnet": _whole(lambda rng: _wif(rng, 0xEF, True)),
    "xprv": _whole(lambda rng: _extended(rng, 0x0488ADE4)),
    "tprv": _whole(lambda rng: _extended(rng, 0x04358394)),
    "zprv": _whole(lambda rng: _extended(rng, 0x04B2430C)),
    "solana-secret-key": _whole(lambda rng: b58encode(rng.randbytes(64))),
}


def samples(per_kind: int = 3, seed: int = 12) -> list[Sample]:
    """``per_kind`` samples of every kind, the same ones for the same seed."""
    rng = random.Random(seed)
    out: list[Sample] = []
    for kind, make in KINDS.items():
        for _ in range(per_kind):
            _, text, secret = make(rng)
            out.append((kind, text, secret or text))
    return out


def _benign(seed: int = 7) -> list[tuple[str, object]]:
    rng = random.Random(seed)
    values: list[tuple[str, object]] = []
    for n in range(20):
        values.append(("order_id", f"ord-2026113{n % 10}-{rng.randrange(10**6):06d}"))
        values.append(("client_order_id", _uuid(rng)))
        values.append(("venue_order_id", str(rng.randrange(10**12, 10**13))))
        values.append(("tx_hash", "0x" + _run(rng, HEX, 64)))
        values.append(("blockHash", "0x" + _run(rng, HEX, 64)))
        values.append(("txid", _run(rng, HEX, 64)))
        values.append(("address", "0x" + "".join(c.upper() if rng.random() < 0.5 else c for c in _run(rng, HEX, 40))))
        values.append(("price", f"{rng.uniform(0.0001, 100000):.8f}"))
        values.append(
            (
                "ts",
                f"2026-11-{rng.randrange(1, 31):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00."
                f"{rng.randrange(10**6):06d}+00:00",
            )
        )
        values.append(("request_id", _uuid(rng)))
    symbols = ["BTC-USD", "ETH-USDT", "BTCUSDT", "SOL/USDC", "BTC-PERP", "ETH-27DEC26-3000-C", "XBT/EUR", "DOGE-USD"]
    values += [("symbol", s) for s in symbols]
    values += [("deposit_address", "bc1q" + _run(rng, "023456789acdefghjklmnpqrstuvwxyz", 38)) for _ in range(4)]
    values += [("deposit_address", "1" + _run(rng, B58, 33)) for _ in range(4)]
    values += [("wallet_address", b58encode(rng.randbytes(32))) for _ in range(4)]  # Solana addresses
    values += [(key, b58encode(rng.randbytes(32))) for key in ("recipient", "mint", "owner", "from", "to", "signer")]
    values += [("merkle_root", _run(rng, HEX, 64)), ("nonce", "0x" + _run(rng, HEX, 64))]
    values += [("transactionHash", "0x" + _run(rng, HEX, 64)), ("sha512", hashlib.sha512(b"x").hexdigest())]
    values += [("sha256", hashlib.sha256(rng.randbytes(8)).hexdigest()) for _ in range(4)]
    values += [("digest", hashlib.sha1(rng.randbytes(8)).hexdigest()) for _ in range(4)]
    values += [("md5", hashlib.md5(rng.randbytes(8)).hexdigest()) for _ in range(4)]
    values += [("ts_ms", str(rng.randrange(1_700_000_000_000, 1_800_000_000_000))) for _ in range(4)]
    values += [("quantity", rng.uniform(0, 10)) for _ in range(4)]
    tx = "0x" + _run(rng, HEX, 64)
    messages = [
        "Order rejected: insufficient margin",
        "Rate limit exceeded, retry after 1000 ms",
        "Filled 0.5 BTC at 97012.5 on sim",
        f"tx {tx} confirmed in block 19000000",
        f"order {_uuid(rng)} cancelled by user",
        "Signature for this request is not valid.",
        "Invalid API-key, IP, or permissions for action.",
        "Timestamp for this request was 1000ms ahead of the server's time.",
        "EAPI:Invalid key",
        "EOrder:Insufficient funds",
        'ERROR: password authentication failed for user "app"',
        "token expired, refreshing",
        "the bearer of bad news",
        "risk limit warning: position 2.5 BTC exceeds 2.0",
        "websocket reconnected after 3 attempts",
        "Account has insufficient balance for requested action.",
        "Client order id is duplicated: c-88812",
        f"hash: {hashlib.sha256(b'block').hexdigest()}",
        "post-only order would take liquidity",
        "Order would immediately trigger.",
    ]
    values += [("message", m) for m in messages]
    urls = [
        "https://api.binance.com/api/v3/order?symbol=BTCUSDT&side=BUY&type=LIMIT",
        "wss://stream.binance.com:9443/ws/btcusdt@trade",
        f"https://etherscan.io/tx/{tx}",
        "https://api.kraken.com/0/public/Ticker?pair=XBTUSD",
        "https://ftx.example.com/markets/BTC-PERP",
        "postgres://db.internal:5432/journal",
        "https://user@git.example.com/repo.git",
        "https://www.example.com/docs/api#authentication",
        "http://localhost:8000/console",
        "https://api.exchange.coinbase.com/products/BTC-USD/book?level=2",
    ]
    values += [("url", u) for u in urls]
    values += [("status", s) for s in ("filled", "partially_filled", "canceled", "rejected", "new", "expired")]
    values += [("side", s) for s in ("buy", "sell")]
    values += [("venue", v) for v in ("binance", "kraken", "coinbase", "sim", "bybit", "okx")]
    return values


BENIGN: list[tuple[str, object]] = _benign()
"""``(key, value)`` pairs a trading engine writes that must be shown as they are."""
