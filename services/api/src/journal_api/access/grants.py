"""Grants: which events a credential may read, and the filter a session applies (docs/60_ACCESS.md#grants).

Pure functions and data: no socket and no database here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from journal_api.journal.models import LEVELS, Channel, EventFilter, Label, Level, TypePattern

__all__ = ["FULL", "Grant", "GrantError", "effective_filter", "grant_from_claim"]


class GrantError(Exception):
    """A filter asks for more than the grant allows; the message names the field."""


class Grant(BaseModel):
    """What a credential may read; ``None`` in a field grants everything for it."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    channels: tuple[Channel, ...] | None = Field(default=None, min_length=1, max_length=100)
    types: tuple[TypePattern, ...] | None = Field(default=None, min_length=1, max_length=100)
    symbols: tuple[Label, ...] | None = Field(default=None, min_length=1, max_length=100)
    levels: tuple[Level, ...] | None = Field(default=None, min_length=1, max_length=5)
    metrics: bool = False

    @field_validator("levels", mode="after")
    @classmethod
    def _upper_set(cls, levels: tuple[Level, ...] | None) -> tuple[Level, ...] | None:
        # A grant never hides an event more severe than one it shows, so it is a least severe level and all above.
        if levels is None:
            return None
        least = min(LEVELS.index(level) for level in levels)
        if set(levels) != set(LEVELS[least:]):
            raise ValueError(
                f"levels must be a level and every more severe one (e.g. {', '.join(LEVELS[least:])}), without gaps"
            )
        return LEVELS[least:]

    @property
    def min_level(self) -> Level | None:
        """The least severe level granted (``None``: every level)."""
        return None if self.levels is None else self.levels[0]

    def describe(self) -> str:
        """One line for ``journal keys list``: the fields that restrict, or ``everything``."""
        parts = [
            f"{name}={','.join(values)}"
            for name, values in (("channels", self.channels), ("types", self.types), ("symbols", self.symbols))
            if values is not None
        ]
        if self.min_level is not None:
            parts.append(f"levels>={self.min_level}")
        if self.metrics:
            parts.append("metrics")
        restricted = any(value is not None for value in (self.channels, self.types, self.symbols, self.levels))
        return " ".join(parts if restricted else ["everything", *parts])


FULL = Grant(metrics=True)
"""An operator token's grant: every event, and /metrics."""


def grant_from_claim(claim: object) -> Grant:
    """The grant a JWT's ``journal`` claim (or a key's stored grant) describes; raise ``ValueError`` when it is
    not one, saying why without echoing values."""
    if not isinstance(claim, dict):
        raise ValueError('the "journal" claim must be an object: {"channels": [...], ...}')  # noqa: TRY004
    try:
        return Grant.model_validate(claim)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'grant'}: {error['msg']}" for error in exc.errors()
        )
        raise ValueError(f'the "journal" claim is not a grant ({problems})') from None


def _type_covered(asked: str, granted: tuple[str, ...]) -> bool:
    """An exact type is covered by itself or a granted prefix; a prefix by an equal or shorter granted prefix."""
    for pattern in granted:
        if pattern.endswith("*"):
            if asked.startswith(pattern[:-1]):
                return True
        elif asked == pattern:
            return True
    return False


def effective_filter(asked: EventFilter, grant: Grant) -> EventFilter:
    """The client's filter intersected with the grant: each field the client left out takes the grant's value,
    each it gave must lie inside the grant (:class:`GrantError` otherwise)."""
    fields: dict[str, Any] = {"trade_ids": asked.trade_ids}
    for name, granted in (("channels", grant.channels), ("symbols", grant.symbols)):
        wanted: list[str] | None = getattr(asked, name)
        if granted is not None and wanted is not None and not set(wanted) <= set(granted):
            outside = sorted(set(wanted) - set(granted))
            raise GrantError(f"{name} {', '.join(outside)} not granted; this credential allows {', '.join(granted)}")
        fields[name] = wanted if wanted is not None else _as_list(granted)
    if grant.types is not None and asked.types is not None:
        outside = [t for t in asked.types if not _type_covered(t, grant.types)]
        if outside:
            raise GrantError(f"types {', '.join(outside)} not granted; this credential allows {', '.join(grant.types)}")
    fields["types"] = asked.types if asked.types is not None else _as_list(grant.types)
    least = grant.min_level
    if least is not None and asked.min_level is not None and LEVELS.index(asked.min_level) < LEVELS.index(least):
        raise GrantError(f"min_level {asked.min_level} not granted; this credential allows {least} and above")
    fields["min_level"] = asked.min_level if asked.min_level is not None else least
    return EventFilter.model_validate(fields)


def _as_list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)
