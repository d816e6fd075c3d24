"""The value-shape rules redaction applies, as data (docs/20_EVENT_JOURNAL.md#redaction).

Each rule has an id (reported in metrics and logs), a Python regular expression, the group that is the secret, and
a *trigger*: an RE2 pattern that occurs in every match. All triggers form one RE2 set, searched once per string;
only the rules whose trigger occurred run their regular expression and checks (entropy, checksum, wordlist).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.resources import files

import re2  # type: ignore[import-untyped]

from journal_api.journal.secret_providers import PROVIDER_TOKENS, SHORT_PREFIX_TRIGGERS

__all__ = [
    "BIP39_WORDS",
    "RULES",
    "SENSITIVE_PARTS",
    "Rule",
    "base58check",
    "may_match",
    "shannon_entropy",
    "triggered",
]

BIP39_WORDS = frozenset(files("journal_api.journal").joinpath("bip39_english.txt").read_text("ascii").split())
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58C = "[1-9A-HJ-NP-Za-km-z]"


@dataclass(frozen=True, slots=True)
class Rule:
    """One shape of secret."""

    id: str
    regex: re.Pattern[str]
    trigger: str  # RE2 syntax; occurs in every match of ``regex``
    groups: tuple[int, ...] = (0,)  # the first of these groups that took part in the match is the secret
    entropy: float = 0.0  # the secret's minimum Shannon entropy, bits per character
    check: Callable[[str], bool] | None = None  # a further test the secret must pass (a checksum, a decoding)
    ambiguous: bool = False  # public data in some contexts: shown there (docs: ambiguous shapes)
    finder: Callable[[str], Iterator[tuple[int, int]]] | None = None  # spans found by code instead of ``regex``

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """Where the secrets this rule recognises sit in ``text``."""
        if self.finder is not None:
            yield from self.finder(text)
            return
        position = 0
        while (match := self.regex.search(text, position)) is not None:
            group = next(g for g in self.groups if match.start(g) >= 0)
            secret = match.group(group)
            if shannon_entropy(secret) < self.entropy or (self.check is not None and not self.check(secret)):
                position = match.start() + 1  # a shorter match may start inside this one: `Cookie: session=…`
                continue
            yield match.start(group), match.end(group)
            position = max(match.end(), match.start() + 1)


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``'s own character frequencies (0 for an empty string)."""
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values()) if size else 0.0


def base58check(text: str) -> bytes | None:
    """The payload of a base58check string (version byte included), or ``None`` when its checksum is wrong."""
    number = 0
    for char in text:
        number = number * 58 + _B58.index(char)
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    raw = b"\0" * (len(text) - len(text.lstrip("1"))) + raw
    payload, checksum = raw[:-4], raw[-4:]
    return payload if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum else None


def _is_wif(text: str) -> bool:
    # Version 0x80 (mainnet) or 0xef (testnet), then 32 key bytes, then 0x01 when the public key is compressed.
    payload = base58check(text)
    return payload is not None and payload[0] in (0x80, 0xEF) and (len(payload) == 33 or payload[33:] == b"\x01")


def _is_basic_credential(text: str) -> bool:
    try:
        return b":" in base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False


def _is_base64_private_key(text: str) -> bool:
    head = text[:96]
    return b"PRIVATE KEY" in base64.b64decode(head[: len(head) // 4 * 4])


def _has_digit(text: str) -> bool:
    return any(char.isdigit() for char in text)


def _looks_random(text: str) -> bool:
    """Upper and lower case and digits, as a random base62/base64 secret has and words, ids and hashes have not."""
    return any(c.isupper() for c in text) and any(c.islower() for c in text) and _has_digit(text)


def _credential_value(text: str) -> bool:
    # After a name that says less than "password" (key, token, auth, sig…): a credential, not a word.
    return len(text) >= 16 or (len(text) >= 8 and _has_digit(text))


_WORD_RUN = re.compile(r"[a-z]+")


def _mnemonic_spans(text: str) -> Iterator[tuple[int, int]]:
    """Runs of 12 or more words from the BIP-39 English wordlist separated only by spaces or commas."""
    # Cheap first (prose is full of word runs): the ten inner words of a run of twelve are whole tokens once commas
    # are spaces, whatever surrounds the run.
    if b"\x01" * 10 not in bytes(map(BIP39_WORDS.__contains__, text.replace(",", " ").split())):
        return
    run: list[re.Match[str]] = []
    for word in (*_WORD_RUN.finditer(text), None):
        joined = bool(run) and word is not None and not text[run[-1].end() : word.start()].strip(" ,\t\n")
        if word is not None and word.group() in BIP39_WORDS and _alone(text, word) and (joined or not run):
            run.append(word)
            continue
        if len(run) >= 12:
            yield run[0].start(), run[-1].end()
        run = [word] if word is not None and word.group() in BIP39_WORDS and _alone(text, word) else []


def _alone(text: str, word: re.Match[str]) -> bool:
    # A whole word: no letter, digit or underscore right before or after it.
    before = text[word.start() - 1 : word.start()]
    after = text[word.end() : word.end() + 1]
    return not (before.isalnum() or before == "_" or after.isalnum() or after == "_")


def _provider_rules() -> Iterator[Rule]:
    for rule_id, prefix, body in PROVIDER_TOKENS:
        regex = re.compile(rf"(?<![A-Za-z0-9])(?:{prefix}){body}")
        yield Rule(rule_id, regex, SHORT_PREFIX_TRIGGERS.get(rule_id, prefix))


_STRONG_NAMES = (
    r"password|passwd|pwd|passphrase|secret|api[_.-]?key|access[_.-]?key|private[_.-]?key|privkey|credential"
    r"|mnemonic|seed[_.-]?phrase"
)
_WEAK_NAMES = r"token|auth|key|sig|signature|cookie|session|sessionid"
_VALUE = r"""(?:"([^"\n]+)"|'([^'\n]+)'|([^\s"'&;,<>=]+={0,2}))"""
# ASCII only: Python would also fold U+0130, U+0131, U+017F and the Kelvin sign, RE2 not all of them.
_CONTEXT = re.IGNORECASE | re.ASCII
_OPERATOR = re.compile(r"=>|:=|=|:")
_NAME_BEFORE = re.compile(r"""\s*["']?([A-Za-z0-9_.-]{1,64})""")  # on the reversed text before an operator
_VALUE_AFTER = re.compile(rf"\s*{_VALUE}")
_FOUND_BY_CODE = re.compile("(?!)")  # a rule with a finder has no regular expression of its own


def _assignments(name: re.Pattern[str], check: Callable[[str], bool]) -> Callable[[str], Iterator[tuple[int, int]]]:
    """A finder for ``name = value`` (or ``:``, ``=>``, ``:=``, quotes allowed): the value's span when the
    identifier right before the operator matches ``name`` and the value passes ``check``. Found from the operators
    outward, as a regular expression trying a name at every position of a long text is far slower."""

    def find(text: str) -> Iterator[tuple[int, int]]:
        for operator in _OPERATOR.finditer(text):
            start = operator.start()
            before = _NAME_BEFORE.match(text[max(0, start - 70) : start][::-1])
            value = _VALUE_AFTER.match(text, operator.end())
            if before is None or value is None or not name.search(before.group(1)[::-1]):
                continue
            group = next(g for g in (1, 2, 3) if value.start(g) >= 0)
            if check(value.group(group)):
                yield value.start(group), value.end(group)

    return find


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
        check=_is_base64_private_key,
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
        check=lambda s: _is_basic_credential(s.split()[-1].split("%20")[-1]),
    ),
    Rule(
        "authorization-token",
        re.compile(r"(?<![A-Za-z0-9])(?i:token)(?:\s|%20)+[A-Za-z0-9\-._~+/]{16,}=*", re.ASCII),
        "(?i)token",
        check=lambda s: _has_digit(s[5:]),
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
        "sensitive-assignment",
        _FOUND_BY_CODE,
        f"(?i)(?:{_STRONG_NAMES})",
        finder=_assignments(re.compile(_STRONG_NAMES, _CONTEXT), bool),
    ),
    Rule(
        "credential-assignment",
        _FOUND_BY_CODE,
        f"(?i)(?:{_WEAK_NAMES})",
        finder=_assignments(re.compile(rf"(?:{_WEAK_NAMES})\Z", _CONTEXT), _credential_value),
    ),
    Rule("bip39-mnemonic", _FOUND_BY_CODE, "[ ,\\t\\n]+".join(["[a-z]{3,8}"] * 6), finder=_mnemonic_spans),
    Rule(
        "extended-private-key",
        re.compile(rf"(?<![A-Za-z0-9])[xtyzuvYZUV]prv{_B58C}{{100,}}"),
        rf"[xtyzuvYZUV]prv{_B58C}{{8}}",
    ),
    Rule(
        "wif-private-key",
        re.compile(rf"(?<![A-Za-z0-9])(?:[59]{_B58C}{{50}}|[KLc]{_B58C}{{51}})(?![A-Za-z0-9])"),
        rf"[59KLc]{_B58C}{{50}}",
        check=_is_wif,
    ),
    Rule(
        "hex-32-byte-key",
        re.compile(r"(?<![A-Za-z0-9])(?:0x)?[0-9a-fA-F]{64}(?![A-Za-z0-9])"),
        "[0-9a-fA-F]{64}",
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
        check=lambda s: _looks_random(s) and not re.fullmatch(r"0x[0-9a-fA-F]{40}", s),
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
