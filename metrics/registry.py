"""Labelled counters, gauges and histograms that cost a dict update on the hot path.

prometheus_client's own metrics take a lock and, in multiprocess mode, write an mmap on every
update; a request records three or four of them, so that is a measurable share of the hot path.
These keep plain dicts per worker; `snapshot()` turns them into JSON-able data that
`metrics.shared` merges across workers and `metrics.exposition` renders with prometheus_client.
"""

from __future__ import annotations

from typing import Any

Labels = tuple[str, ...]

DEFAULT_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class Counter:
    """A monotonically increasing value per label set."""

    kind = "counter"

    def __init__(self, name: str, documentation: str, labelnames: Labels = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def snapshot(self) -> list[list[Any]]:
        return [[list(labels), value] for labels, value in self.values.items()]


class Gauge:
    """A value that goes up and down; over live workers, summed when aggregated, or their
    largest with `aggregate="max"` (a start time, a constant 1)."""

    kind = "gauge"

    def __init__(
        self, name: str, documentation: str, labelnames: Labels = (), aggregate: str = "sum"
    ) -> None:
        if aggregate not in ("sum", "max"):
            raise ValueError(f"a gauge is aggregated by sum or max, not {aggregate}")
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.aggregate = aggregate
        self.values: dict[Labels, float] = {}

    def set(self, value: float, labels: Labels = ()) -> None:
        self.values[labels] = value

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def dec(self, labels: Labels = (), amount: float = 1.0) -> None:
        self.inc(labels, -amount)

    def inc_by(self, amount: float) -> None:
        """Add `amount` (negative to take away) to the unlabelled value."""
        self.inc((), amount)

    def snapshot(self) -> list[list[Any]]:
        return [[list(labels), value] for labels, value in self.values.items()]


class Histogram:
    """Observations counted into fixed buckets (non-cumulative here, cumulative on render)."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Labels = (),
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.buckets = buckets
        self.values: dict[Labels, list[float]] = {}  # [bucket counts..., +Inf count, sum]

    def observe(self, value: float, labels: Labels = ()) -> None:
        row = self.values.get(labels)
        if row is None:
            row = self.values[labels] = [0.0] * (len(self.buckets) + 2)
        # bisect_left's answer (the first bucket whose bound is not below the value; a NaN
        # lands in the first, as there), found by a loop: compiled with mypyc, bisect_left is an
        # interpreted call, about 900 instructions an observation, where most requests stop at
        # the first or second bound.
        index = 0
        for bound in self.buckets:
            if not bound < value:
                break
            index += 1
        row[index] += 1.0
        row[-1] += value

    def snapshot(self) -> list[list[Any]]:
        return [[list(labels), list(row)] for labels, row in self.values.items()]


Metric = Counter | Gauge | Histogram


class Registry:
    """The metrics of one worker process."""

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}

    def register(self, metric: Metric) -> Metric:
        if metric.name in self.metrics:
            raise ValueError(f"metric {metric.name} is registered twice")
        self.metrics[metric.name] = metric
        return metric

    def counter(self, name: str, documentation: str, labelnames: Labels = ()) -> Counter:
        metric = Counter(name, documentation, labelnames)
        self.register(metric)
        return metric

    def gauge(
        self, name: str, documentation: str, labelnames: Labels = (), aggregate: str = "sum"
    ) -> Gauge:
        metric = Gauge(name, documentation, labelnames, aggregate)
        self.register(metric)
        return metric

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Labels = (),
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
    ) -> Histogram:
        metric = Histogram(name, documentation, labelnames, buckets)
        self.register(metric)
        return metric

    def snapshot(self) -> dict[str, Any]:
        """JSON-able values of every metric, for aggregation across workers."""
        return {name: metric.snapshot() for name, metric in self.metrics.items()}
