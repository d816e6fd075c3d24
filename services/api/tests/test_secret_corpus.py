"""Every family of secret shapes is masked on generated samples, and trading values are never touched
(docs/20_EVENT_JOURNAL.md#redaction)."""

from __future__ import annotations

import pytest

from journal_api.journal.redaction import REDACTED, Mask, redact

from .secret_corpus import BENIGN, KINDS, samples

SAMPLES = samples()


def test_the_corpus_is_broad() -> None:
    """At least 300 samples over at least 80 kinds, and 200 benign values."""
    assert len(KINDS) >= 80
    assert len(SAMPLES) >= 300
    assert len(BENIGN) >= 200


@pytest.mark.parametrize(("kind", "text", "secret"), SAMPLES, ids=[f"{s[0]}-{n}" for n, s in enumerate(SAMPLES)])
def test_a_secret_under_an_innocuous_key_is_masked(kind: str, text: str, secret: str) -> None:
    """Under ``note`` only the secret part reads [REDACTED]: the rest of a URL or an assignment stays."""
    masks: list[Mask] = []
    assert redact({"note": text}, on_mask=masks.append) == {"note": text.replace(secret, REDACTED)}
    assert masks
    assert all(mask.path == "note" for mask in masks)


@pytest.mark.parametrize(("kind", "text", "secret"), SAMPLES, ids=[f"{s[0]}-{n}" for n, s in enumerate(SAMPLES)])
def test_a_secret_inside_a_sentence_is_masked_and_the_words_kept(kind: str, text: str, secret: str) -> None:
    """A sentence keeps its words; only the secret goes, in a list too."""
    sentence = f"engine said: {text} (retrying in 5 s)"
    expected = sentence.replace(secret, REDACTED)
    assert redact({"log": [sentence]}) == {"log": [expected]}
    assert expected.startswith("engine said: ")
    assert expected.endswith(" (retrying in 5 s)")


@pytest.mark.parametrize(("key", "value"), BENIGN, ids=[f"{k}-{n}" for n, (k, _) in enumerate(BENIGN)])
def test_a_trading_value_is_never_masked(key: str, value: object) -> None:
    """Ids, symbols, prices, timestamps, addresses, hashes, digests, venue messages and plain URLs are shown."""
    masks: list[Mask] = []
    assert redact({key: value, "nested": [{key: value}]}, on_mask=masks.append) == {
        key: value,
        "nested": [{key: value}],
    }
    assert masks == []
