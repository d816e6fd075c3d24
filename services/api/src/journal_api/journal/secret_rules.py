"""The value-shape rules redaction applies, as data (docs/20_EVENT_JOURNAL.md#redaction).

Each rule has an id (reported in metrics and logs), a Python regular expression, the group that is the secret, and
a *trigger*: an RE2 pattern that occurs in every match. All triggers form one RE2 set, searched once per string;
only the rules whose trigger occurred run their regular expression and checks (entropy, checksum, wordlist).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import re2  # type: ignore[import-untyped]

from journal_api.journal.secret_providers import PROVIDER_TOKENS, SHORT_PREFIX_TRIGGERS
from journal_api.journal.secret_shapes import (
    B58_CLASS,
    CASELESS_ASCII,
    FOUND_BY_CODE,
    STRONG_NAMES,
    WEAK_NAMES,
    Rule,
    assignments,
    credential_value,
    has_digit,
    is_base64_private_key,
    is_basic_credential,
    is_wif,
    looks_random,
    mnemonic_spans,
)

__all__ = ["RULES", "SENSITIVE_PARTS", "may_match", "triggered"]


def _provider_rules() -> Iterator[Rule]:
    for rule_id, prefix, body in PROVIDER_TOKENS:
        regex = re.compile(rf"(?<![A-Za-z0-9])(?:{prefix}){body}")
        yield Rule(rule_id, regex, SHORT_PREFIX_TRIGGERS.get(rule_id, prefix))


_FAMILY_RULES = (
    Rule(
        "private-key",
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|(?:\s+[A-Za-z0-9+/=:,.-]+)*)"
        ),
        "-----BEGIN[A-Z0-9 ]*PRIVATE KEY",
    ),
    Rule(
        "private-key-base64",
        re.compile(r"LS0tLS1CRUdJTi[A-Za-z0-9+/]{20,}={0,2}"),
        "LS0tLS1CRUdJTi",
        check=is_base64_private_key,
    ),
    Rule(
        "putty-private-key",
        re.compile(r"Private-Lines: [0-9]+[\s\S]*?(?:Private-MAC: [0-9a-f]+|\Z)"),
        "Private-Lines: ",
    ),
    Rule("jwt", re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){0,3}"), r"eyJ"),
    Rule("authorization-bearer", re.compile(r"(?i:bearer(?:\s|%20)+[a-z0-9\-._~+/]{8,}=*)"), "(?i)bearer"),
    Rule(
        "authorization-basic",
        re.compile(r"(?i:basic)(?:\s|%20)+([A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])", re.ASCII),
        "(?i)basic",
        groups=(0,),
        check=lambda s: is_basic_credential(s.split()[-1].split("%20")[-1]),
    ),
    Rule(
        "authorization-token",
        re.compile(r"(?<![A-Za-z0-9])(?i:token)(?:\s|%20)+[A-Za-z0-9\-._~+/]{16,}=*", re.ASCII),
        "(?i)token",
        check=lambda s: has_digit(s[5:]),
    ),
    Rule(
        "credential-url",
        re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@\"'<>]*:([^\s/?#\"'<>]+)@"),
        r"://[^\s/?#@]*:[^\s/?#]*@",
        groups=(1,),
    ),
    Rule(
        "slack-webhook-url",
        re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/_-]{20,})"),
        r"hooks\.slack\.com/",
        groups=(1,),
    ),
    Rule(
        "discord-webhook-url",
        re.compile(r"discord(?:app)?\.com/api/webhooks/([0-9]+/[A-Za-z0-9_-]{40,})"),
        r"discord(?:app)?\.com/api/webhooks/",
        groups=(1,),
    ),
    Rule(
        "teams-webhook-url",
        re.compile(r"webhook\.office\.com/webhookb2/([A-Za-z0-9@/_-]{40,})"),
        r"webhook\.office\.com/",
        groups=(1,),
    ),
    Rule(
        "discord-bot-token",
        re.compile(r"(?<![A-Za-z0-9])[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}"),
        r"[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.",
    ),
    Rule(
        "zapier-webhook-url",
        re.compile(r"hooks\.zapier\.com/hooks/catch/([0-9]+/[A-Za-z0-9]+)"),
        r"hooks\.zapier\.com/hooks/catch/",
        groups=(1,),
    ),
    Rule(
        "ansible-vault",
        re.compile(r"\$ANSIBLE_VAULT;[0-9.]+;[A-Z0-9]+(?:;[A-Za-z0-9_-]+)?((?:\s+[0-9a-f]+)+)"),
        r"\$ANSIBLE_VAULT;",
        groups=(1,),
    ),
    Rule(
        "password-hash",
        re.compile(
            r"\$(?:2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}|apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}"
            r"|[156]\$(?:rounds=[0-9]+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{22,86}"
            r"|y\$[./A-Za-z0-9]+\$[./A-Za-z0-9]{1,86}\$[./A-Za-z0-9]{43}"
            r"|argon2(?:id|i|d)\$[^\s\"']{20,}|krb5(?:asrep|tgs)\$[^\s\"']{20,})"
        ),
        r"\$(?:2[abxy]?\$[0-9]{2}\$|apr1\$|[156]\$|y\$|argon2|krb5)",
    ),
    Rule(
        "netrc-password",
        re.compile(r"machine\s+\S+\s+login\s+\S+\s+password\s+(\S+)", re.ASCII),
        r"machine\s+\S+\s+login\s",
        groups=(1,),
    ),
    Rule(
        "curl-user-password",
        re.compile(r"curl\s.*?\s(?:-u|--user)\s+[\"']?[^\s:\"']+:([^\s\"']+)", re.ASCII),
        r"curl\s",
        groups=(1,),
    ),
    Rule(
        "password-flag",
        re.compile(
            r"(?:(?:mysql|mysqldump|mariadb)\s[^\n]*?\s(?:-p|--password=)|sshpass\s+-p\s*)[\"']?([^\s\"']+)", re.ASCII
        ),
        r"(?:mysql|mysqldump|mariadb|sshpass)\s",
        groups=(1,),
    ),
    Rule(
        "xml-secret-element",
        re.compile(rf"<[A-Za-z0-9_:.-]*(?:{STRONG_NAMES}|{WEAK_NAMES})>([^<]+)</", CASELESS_ASCII),
        rf"(?i)<[A-Za-z0-9_:.-]*(?:{STRONG_NAMES}|{WEAK_NAMES})>",
        groups=(1,),
    ),
    Rule(
        "sensitive-assignment",
        FOUND_BY_CODE,
        f"(?i)(?:{STRONG_NAMES})",
        finder=assignments(re.compile(STRONG_NAMES, CASELESS_ASCII), bool),
    ),
    Rule(
        "credential-assignment",
        FOUND_BY_CODE,
        f"(?i)(?:{WEAK_NAMES})",
        finder=assignments(re.compile(rf"(?:{WEAK_NAMES})\Z", CASELESS_ASCII), credential_value),
    ),
    Rule("bip39-mnemonic", FOUND_BY_CODE, "[ ,\\t\\n]+".join(["[a-z]{3,8}"] * 6), finder=mnemonic_spans),
    Rule(
        "extended-private-key",
        re.compile(rf"(?<![A-Za-z0-9])[xtyzuvYZUV]prv{B58_CLASS}{{100,}}"),
        rf"[xtyzuvYZUV]prv{B58_CLASS}{{8}}",
    ),
    Rule(
        "wif-private-key",
        re.compile(rf"(?<![A-Za-z0-9])(?:[59]{B58_CLASS}{{50}}|[KLc]{B58_CLASS}{{51}})(?![A-Za-z0-9])"),
        rf"[59KLc]{B58_CLASS}{{50}}",
        check=is_wif,
    ),
    Rule(
        "hex-32-byte-key",
        re.compile(r"(?<![A-Za-z0-9])(?:0x)?[0-9a-fA-F]{64}(?![A-Za-z0-9])"),
        "[0-9a-fA-F]{64}",
        ambiguous=True,
    ),
    Rule(
        "hex-64-byte-secret",
        re.compile(r"(?<![A-Za-z0-9])(?:0x)?[0-9a-fA-F]{128}(?![A-Za-z0-9])"),
        "[0-9a-fA-F]{128}",
        ambiguous=True,
    ),
    Rule(
        "uuid",
        re.compile(r"(?<![A-Za-z0-9])[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(?![A-Za-z0-9])"),
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-",
        ambiguous=True,
    ),
    Rule(
        "high-entropy-token",
        re.compile(r"(?<![A-Za-z0-9+/_=.:@-])[A-Za-z0-9+/_-]{36,}={0,2}(?![A-Za-z0-9+/_=-])"),
        "|".join(f"[A-Za-z0-9+/_-]{{{k}}}[0-9][A-Za-z0-9+/_-]{{{35 - k}}}" for k in range(36)),
        entropy=4.0,
        check=lambda s: looks_random(s) and not re.fullmatch(r"0x[0-9a-fA-F]{40}", s),
        ambiguous=True,
    ),
)

RULES: tuple[Rule, ...] = (*_provider_rules(), *_FAMILY_RULES)
"""Every value-shape rule, in the order their masks are applied."""


SENSITIVE_PARTS = (
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
"""Key parts that make a key sensitive: compared by containment with keys lower-cased with every character that is
not a letter or digit removed (`db_password`, `X-Api-Key`, `api key` and `refresh_token` all contain one)."""

# The same comparison as an RE2 pattern on unfolded text: the part's letters in any case with only characters that
# folding removes between them. Python's lower() turns exactly two other characters into ASCII letters: U+0130
# (to "i" and a combining dot) and the Kelvin sign (to "k"); they count as those letters, never as separators.
_EXTRA = {"i": "\u0130", "k": "\u212a"}
_SEPARATORS = "[^A-Za-z0-9\u0130\u212a]*"


def _folded(part: str) -> str:
    return _SEPARATORS.join(f"[{c}{c.upper()}{_EXTRA.get(c, '')}]" if c.isalpha() else c for c in part)


def _compile_triggers() -> re2.Set:
    options = re2.Options()
    options.max_mem = 64 << 20  # the triggers' DFA; more than this and RE2 would fall back to slower matching
    triggers = re2.Set.SearchSet(options)
    for pattern in (*(rule.trigger for rule in RULES), *map(_folded, SENSITIVE_PARTS)):
        triggers.Add(pattern)
    triggers.Compile()
    return triggers


TRIGGERS = _compile_triggers()


def _match(text: str) -> list[int]:
    # RE2 takes UTF-8; "surrogatepass" lets a lone surrogate through (it matches no trigger) instead of raising.
    found: list[int] | None = TRIGGERS.Match(text.encode("utf-8", "surrogatepass"))
    return found or []


def may_match(text: str) -> bool:
    """Whether any rule's trigger or any sensitive key part (folded as keys are) occurs in ``text``: one RE2 pass."""
    return bool(_match(text))


def triggered(text: str) -> list[Rule]:
    """The rules whose trigger occurs in ``text``: the only ones that can match it."""
    return [RULES[index] for index in _match(text) if index < len(RULES)]
