"""Prometheus text exposition of merged metrics, through prometheus_client."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from metrics.registry import Histogram, Registry
from metrics.shared import Merged

__all__ = ["CONTENT_TYPE_LATEST", "render"]


class _MergedCollector(Collector):
    def __init__(self, registry: Registry, merged: Merged) -> None:
        self.registry = registry
        self.merged = merged

    def collect(self) -> Iterator[Metric]:
        for name, metric in self.registry.metrics.items():
            values = self.merged.get(name, {})
            labelnames = list(metric.labelnames)
            if isinstance(metric, Histogram):
                family = HistogramMetricFamily(name, metric.documentation, labels=labelnames)
                bounds = [*(_le(b) for b in metric.buckets), "+Inf"]
                for labels, row in sorted(values.items()):
                    cumulative, total = [], 0.0
                    for bound, count in zip(bounds, row[:-1], strict=True):
                        total += count
                        cumulative.append((bound, total))
                    family.add_metric(list(labels), cumulative, row[-1])
                yield family
                continue
            if metric.kind == "counter":
                counter = CounterMetricFamily(name, metric.documentation, labels=labelnames)
                for labels, value in sorted(values.items()):
                    counter.add_metric(list(labels), value)
                yield counter
            else:
                gauge = GaugeMetricFamily(name, metric.documentation, labels=labelnames)
                for labels, value in sorted(values.items()):
                    gauge.add_metric(list(labels), value)
                yield gauge


def _le(bound: float) -> str:
    return repr(float(bound))


def render(registry: Registry, merged: Merged) -> bytes:
    """The Prometheus text format of `merged`, described by `registry`."""
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(_MergedCollector(registry, merged))
    return generate_latest(collectors)
