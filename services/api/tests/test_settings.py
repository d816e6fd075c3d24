"""Settings: read once from the environment, refused with a message that names the variable, never a value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from journal_api.stream.settings import Settings, describe_errors

TOKEN = "operator-token-0123456789"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every JOURNAL_ variable is read; lists are comma-separated; blanks are ignored."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@db/journal")
    monkeypatch.setenv("JOURNAL_TOKENS", f" {TOKEN} , ,second-token-0123456789 ")
    monkeypatch.setenv("JOURNAL_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("JOURNAL_HEARTBEAT_S", "2.5")
    monkeypatch.setenv("JOURNAL_MAX_CONNECTIONS", "7")
    settings = Settings()
    assert [token.get_secret_value() for token in settings.tokens] == [TOKEN, "second-token-0123456789"]
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert (settings.heartbeat_s, settings.max_connections, settings.auth_timeout_s) == (2.5, 7, 5.0)


def test_secrets_never_show_in_a_printed_settings_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logging or printing settings shows neither the tokens nor the database password."""
    settings = Settings(database_url="postgresql://u:hunter2-password@db/j", tokens=TOKEN)
    assert TOKEN not in repr(settings)
    assert "hunter2" not in repr(settings)
    assert settings.database_url.get_secret_value() == "postgresql://u:hunter2-password@db/j"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"tokens": "short"},
            "JOURNAL_TOKENS: every token must be at least 16 characters long; JOURNAL_TOKENS takes comma-separated",
        ),
        (
            {"tokens": TOKEN, "send_timeout_s": 0},
            "JOURNAL_SEND_TIMEOUT_S: Input should be greater than or equal to 0.05",
        ),
    ],
)
def test_bad_settings_are_described_by_variable(fields: dict[str, object], message: str) -> None:
    """The message names the variable; the token hint appears only when tokens are the problem."""
    with pytest.raises(ValidationError) as caught:
        Settings(database_url="postgresql://db/j", **fields)  # type: ignore[arg-type]
    described = describe_errors(caught.value)
    assert described.startswith(message)
    assert ("secrets.token_urlsafe" in described) == ("tokens" in message.lower())
