"""Telling operators that a writer leaks secrets, never the secrets: masks counted by rule, and a rate-limited log
line naming the event, its type, the key path and the rule (docs/50_OPERATIONS.md#a-writer-leaks-secrets)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from journal_api.journal.redaction import Mask
from journal_api.stream.logs import FIELDS

__all__ = ["LOG_INTERVAL_S", "LeakLog", "OnLeak"]

LOG_INTERVAL_S = 60.0
"""At most one line per rule in this many seconds; the next line says how many masks went unlogged meanwhile."""

OnLeak = Callable[[int, str, Mask], None]
"""Told of each value-shape mask in an event: ``(event id, event type, mask)``."""

_log = logging.getLogger("journal_api.leaks")


class LeakLog:
    """Counts masks by rule and logs them, rate-limited per rule. Called from one thread (the event loop's)."""

    def __init__(self, *, interval_s: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: Counter[str] = Counter()
        self._interval_s = interval_s
        self._clock = clock
        self._logged_at: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    def __call__(self, event_id: int, event_type: str, mask: Mask) -> None:
        self.counts[mask.rule] += 1
        now = self._clock()
        last = self._logged_at.get(mask.rule)
        if last is not None and now - last < self._interval_s:
            self._unlogged[mask.rule] += 1
            return
        self._logged_at[mask.rule] = now
        fields = {
            "event_id": str(event_id),
            "type": event_type,
            "path": mask.path,
            "rule": mask.rule,
            "unlogged": self._unlogged.pop(mask.rule, 0),
        }
        _log.warning("secret masked in an event; fix the writer", extra={FIELDS: fields})
