"""Shapes of secrets, and the checks that tell them from look-alikes: the building blocks of the rules in
:mod:`journal_api.journal.secret_rules` (docs/20_EVENT_JOURNAL.md#redaction)."""

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

__all__ = [
    "B58_CLASS",
    "BIP39_WORDS",
    "CASELESS_ASCII",
    "FOUND_BY_CODE",
    "STRONG_NAMES",
    "WEAK_NAMES",
    "Rule",
    "assignments",
    "base58check",
    "credential_value",
    "has_digit",
    "is_base64_private_key",
    "is_basic_credential",
    "is_wif",
    "looks_random",
    "mnemonic_spans",
    "shannon_entropy",
]

BIP39_WORDS = frozenset(files("journal_api.journal").joinpath("bip39_english.txt").read_text("ascii").split())
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
B58_CLASS = "[1-9A-HJ-NP-Za-km-z]"


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


def is_wif(text: str) -> bool:
    # Version 0x80 (mainnet) or 0xef (testnet), then 32 key bytes, then 0x01 when the public key is compressed.
    payload = base58check(text)
    return payload is not None and payload[0] in (0x80, 0xEF) and (len(payload) == 33 or payload[33:] == b"\x01")


def is_basic_credential(text: str) -> bool:
    try:
        return b":" in base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False


def is_base64_private_key(text: str) -> bool:
    head = text[:96]
    return b"PRIVATE KEY" in base64.b64decode(head[: len(head) // 4 * 4])


def has_digit(text: str) -> bool:
    return any(char.isdigit() for char in text)


def looks_random(text: str) -> bool:
    """Upper and lower case and digits, as a random base62/base64 secret has and words, ids and hashes have not."""
    return any(c.isupper() for c in text) and any(c.islower() for c in text) and has_digit(text)


def credential_value(text: str) -> bool:
    # After a name that says less than "password" (key, token, auth, sig…): a credential, not a word.
    return len(text) >= 16 or (len(text) >= 8 and has_digit(text))


_WORD_RUN = re.compile(r"[a-z]+")


def mnemonic_spans(text: str) -> Iterator[tuple[int, int]]:
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


STRONG_NAMES = (
    r"password|passwd|pwd|passphrase|secret|api[_.-]?key|access[_.-]?key|private[_.-]?key|privkey|credential"
    r"|mnemonic|seed[_.-]?phrase"
)
WEAK_NAMES = r"token|auth|key|sig|signature|cookie|session|sessionid"
_VALUE = r"""(?:"([^"\n]+)"|'([^'\n]+)'|([^\s"'&;,<>=]+={0,2}))"""
# ASCII only: Python would also fold U+0130, U+0131, U+017F and the Kelvin sign, RE2 not all of them.
CASELESS_ASCII = re.IGNORECASE | re.ASCII
_OPERATOR = re.compile(r"=>|:=|=|:")
_NAME_BEFORE = re.compile(r"""\s*["']?([A-Za-z0-9_.-]{1,64})""")  # on the reversed text before an operator
_VALUE_AFTER = re.compile(rf"\s*{_VALUE}")
FOUND_BY_CODE = re.compile("(?!)")  # a rule with a finder has no regular expression of its own


def assignments(name: re.Pattern[str], check: Callable[[str], bool]) -> Callable[[str], Iterator[tuple[int, int]]]:
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
