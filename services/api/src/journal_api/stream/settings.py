"""The server's settings, read once from the environment (docs/30_WS_PROTOCOL.md#settings)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["MIN_TOKEN_LENGTH", "Settings", "describe_errors"]

MIN_TOKEN_LENGTH = 16


class Settings(BaseSettings):
    """Everything the server needs, validated; built once and passed down. Each field is read from the variable
    ``JOURNAL_<FIELD>`` (``DATABASE_URL`` for the database), or given by name in code."""

    model_config = SettingsConfigDict(
        env_prefix="JOURNAL_", frozen=True, extra="ignore", hide_input_in_errors=True, populate_by_name=True
    )

    # Secret types: a settings object that gets logged or printed shows "**********", not a password or token.
    database_url: SecretStr = Field(validation_alias="DATABASE_URL")
    tokens: Annotated[tuple[SecretStr, ...], NoDecode]
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    heartbeat_s: float = Field(default=15.0, ge=0.05, le=3600)
    auth_timeout_s: float = Field(default=5.0, ge=0.05, le=300)
    max_connections: int = Field(default=5000, ge=1, le=1_000_000)
    send_timeout_s: float = Field(default=10.0, ge=0.05, le=600)
    metrics_public: bool = False
    log_format: Literal["text", "json"] = "text"
    # Advanced tunables (docs/30_WS_PROTOCOL.md#settings).
    page_size: int = Field(default=500, ge=1, le=1000)
    buffer_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    check_interval_s: float = Field(default=5.0, ge=0.01, le=600)
    held_log_s: float = Field(default=5.0, ge=0.05, le=86_400)

    @field_validator("tokens", "allowed_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("tokens", mode="after")
    @classmethod
    def _check_tokens(cls, tokens: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if not tokens:
            raise ValueError("set at least one token")
        if any(len(token.get_secret_value()) < MIN_TOKEN_LENGTH for token in tokens):
            # The message never repeats a token: it may end up in a log.
            raise ValueError(f"every token must be at least {MIN_TOKEN_LENGTH} characters long")
        return tokens


def describe_errors(error: ValidationError) -> str:
    """A settings error as one line per variable, naming the variable and never echoing a value."""
    lines = []
    for item in error.errors():
        field = str(item["loc"][0])
        name = field if field == "DATABASE_URL" else f"JOURNAL_{field.upper()}"
        message = "not set" if item["type"] == "missing" else item["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {message}")
    hint = ""
    if any(line.startswith("JOURNAL_TOKENS") for line in lines):
        hint = (
            "; JOURNAL_TOKENS takes comma-separated tokens, e.g. "
            "JOURNAL_TOKENS=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return "; ".join(lines) + hint
