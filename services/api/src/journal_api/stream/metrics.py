"""What ``/metrics`` reports (docs/50_OPERATIONS.md#get-metrics).

The stream updates plain integers from the event loop's one thread; they become Prometheus metrics only when
scraped, so a frame costs an addition, not a lock.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from journal_api.journal.leaks import LeakLog

__all__ = ["LAG_BUCKETS_S", "Metrics", "Watched"]

LAG_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Watched(Protocol):
    """A subscribed session, as the scrape sees it."""

    @property
    def position(self) -> int: ...

    def queued_bytes(self) -> int: ...


class _Hub(Protocol):
    @property
    def head(self) -> int: ...

    @property
    def buffered_rows(self) -> int: ...

    @property
    def listener_connects(self) -> int: ...

    @property
    def hold(self) -> _Hold | None: ...

    @property
    def wakefulness(self) -> _Wakefulness: ...

    @property
    def notifications(self) -> int: ...


class _Pace(Protocol):
    @property
    def busy(self) -> bool: ...


class _Wakefulness(Protocol):
    @property
    def mode(self) -> str: ...

    @property
    def sleeps(self) -> int: ...

    @property
    def pace(self) -> _Pace: ...


class _Hold(Protocol):
    @property
    def since(self) -> float: ...

    @property
    def rows(self) -> int: ...


class Metrics:
    """The stream's counters, and a registry that reports them with prometheus-client's process collectors."""

    def __init__(self) -> None:
        self.connections = 0
        self.frames_sent = 0
        self.replayed_rows = 0
        self.closes: Counter[int | str] = Counter()  # by close code, or "other"
        self.leaks = LeakLog()  # the hub tells it of masks once per event (docs/20_EVENT_JOURNAL.md#redaction)
        self.sessions: set[Watched] = set()
        self.hub: _Hub | None = None
        self._lag_counts = [0] * (len(LAG_BUCKETS_S) + 1)
        self._lag_sum = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.registry.register(self)

    def observe_lag(self, seconds: float, count: int = 1) -> None:
        """``count`` sessions got frames ``seconds`` after the hub noticed them."""
        self._lag_counts[bisect_left(LAG_BUCKETS_S, seconds)] += count
        self._lag_sum += seconds * count

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """prometheus-client's collector interface: the figures as of now."""
        head = self.hub.head if self.hub is not None else 0
        yield GaugeMetricFamily("journal_sessions", "Open /ws connections.", value=self.connections)
        yield GaugeMetricFamily(
            "journal_sessions_behind",
            "Subscribed sessions whose position is behind the newest event the server knows of.",
            value=sum(1 for session in self.sessions if session.position < head),
        )
        yield GaugeMetricFamily(
            "journal_send_queue_bytes",
            "Bytes written to sessions' sockets that their clients have not taken yet, summed.",
            value=sum(session.queued_bytes() for session in self.sessions),
        )
        if self.hub is not None:
            yield GaugeMetricFamily(
                "journal_hub_buffer_rows",
                "Recent events the hub holds for live sessions.",
                value=self.hub.buffered_rows,
            )
            yield GaugeMetricFamily("journal_head_id", "The newest event id the hub has read.", value=head)
            hold = self.hub.hold
            yield GaugeMetricFamily(
                "journal_held_seconds",
                "How long delivery has waited on the in-flight transaction holding the horizon back (0: none).",
                value=0.0 if hold is None else time.monotonic() - hold.since,
            )
            yield GaugeMetricFamily(
                "journal_held_rows",
                "Committed events above the horizon, waiting for an older transaction to end (counted each second).",
                value=0 if hold is None else hold.rows,
            )
            wakefulness = self.hub.wakefulness
            yield GaugeMetricFamily(
                "journal_hub_asleep",
                "1 while the hub's row says asleep (writers NOTIFY to wake it: it sleeps, or is about to), 0 while it"
                " is awake and reads by itself.",
                value=0 if wakefulness.mode == "awake" else 1,
            )
            yield GaugeMetricFamily(
                "journal_hub_busy",
                "1 while the journal is busy and the awake hub reads every 10 ms instead of every 1 ms.",
                value=1 if wakefulness.pace.busy else 0,
            )
            yield CounterMetricFamily("journal_hub_sleeps", "Times the hub fell asleep.", value=wakefulness.sleeps)
            yield CounterMetricFamily(
                "journal_notifications",
                "NOTIFYs the hub received: one per writing transaction that woke it.",
                value=self.hub.notifications,
            )
            yield CounterMetricFamily(
                "journal_listener_reconnects",
                "Times the hub replaced its LISTEN connection.",
                value=max(self.hub.listener_connects - 1, 0),
            )
        yield CounterMetricFamily("journal_frames_sent", "Frames written to clients.", value=self.frames_sent)
        yield CounterMetricFamily(
            "journal_replayed_rows", "Events read from the database to replay backlogs.", value=self.replayed_rows
        )
        closes = CounterMetricFamily("journal_session_closes", "Closed /ws connections by close code.", labels=["code"])
        for code, count in sorted(self.closes.items(), key=str):
            closes.add_metric([str(code)], count)
        yield closes
        redactions = CounterMetricFamily(
            "journal_redactions", "Secrets masked by shape in events the hub read, by rule.", labels=["rule"]
        )
        for rule, count in sorted(self.leaks.counts.items()):
            redactions.add_metric([rule], count)
        yield redactions
        cumulative, buckets = 0, []
        for bound, count in zip((*LAG_BUCKETS_S, float("inf")), self._lag_counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily(
            "journal_notify_send_lag_seconds",
            "From the hub noticing new events to their frames being written to a live session's socket.",
            buckets=buckets,
            sum_value=self._lag_sum,
        )
