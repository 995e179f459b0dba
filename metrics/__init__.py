"""Observation: cheap in-process metrics, their aggregation over worker processes, and the
Prometheus exposition. Nothing here knows about HTTP routing or authentication."""

from metrics.registry import Counter, Gauge, Histogram, Registry

__all__ = ["Counter", "Gauge", "Histogram", "Registry"]
