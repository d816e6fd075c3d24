"""What a benchmark run measures and how big it runs: latencies, the figures a report shows, the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compare import PLAN as COMPARE_PLAN

__all__ = ["Figures", "Latencies", "Plan"]


@dataclass
class Latencies:
    """Seconds, one per delivered event."""

    samples: list[float]
    missing: int = 0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    @property
    def p50_ms(self) -> float:
        return self.percentile(50) * 1e3

    @property
    def p99_ms(self) -> float:
        return self.percentile(99) * 1e3

    def describe(self) -> str:
        lost = f", {self.missing} not delivered" if self.missing else ""
        return f"p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms (n={len(self.samples)}{lost})"


@dataclass
class Figures:
    """Everything one run measured, by name, with the text the report shows."""

    values: dict[str, float] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, value: float, text: str) -> None:
        self.values[name], self.text[name] = value, text
        print(f"  {name}: {text}", flush=True)


@dataclass
class Plan:
    quick: bool

    def __getattr__(self, name: str) -> Any:
        full, quick = _PLAN[name]
        return quick if self.quick else full


_PLAN: dict[str, tuple[Any, Any]] = {
    "latency_events": (300, 50),
    "latency_rate": (10.0, 50.0),
    "many_clients": ((100, 1000), (20, 100)),
    "fan_out_clients": (1000, 100),
    "fan_out_rate": (400.0, 100.0),
    "fan_out_seconds": (10.0, 3.0),
    "replay_rows": (1_000_000, 20_000),
    "live_clients": (10, 5),
    "memory_connections": (5000, 200),
    "insert_writers": ((1, 2, 8), (1, 8)),
    "insert_seconds": (2.0, 0.5),
    "insert_rounds": (4, 1),
    "missed_seconds": (10.0, 2.0),
    **COMPARE_PLAN,
}
