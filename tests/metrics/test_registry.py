"""Per-worker metrics, their merge across workers, and the Prometheus text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from metrics.exposition import render
from metrics.registry import Registry
from metrics.shared import SharedSnapshots


def _registry() -> Registry:
    registry = Registry()
    registry.counter("jobs_total", "Jobs.", ("kind",))
    registry.gauge("open_things", "Open things.")
    registry.histogram("wait_seconds", "Waits.", ("kind",), buckets=(0.1, 1.0))
    return registry


def test_counter_gauge_histogram_render_as_prometheus_text() -> None:
    registry = _registry()
    counter, gauge, histogram = registry.metrics.values()
    counter.inc(("a",))  # type: ignore[union-attr]
    counter.inc(("a",), 2)  # type: ignore[union-attr]
    gauge.inc_by(3)  # type: ignore[union-attr]
    for value in (0.05, 0.1, 0.5, 7.0):
        histogram.observe(value, ("a",))  # type: ignore[union-attr]
    text = render(registry, SharedSnapshots(registry, None).merged()).decode()
    assert 'jobs_total{kind="a"} 3.0' in text
    assert "open_things 3.0" in text
    # Buckets are cumulative and `le` is inclusive: 0.1 falls in the 0.1 bucket.
    assert 'wait_seconds_bucket{kind="a",le="0.1"} 2.0' in text
    assert 'wait_seconds_bucket{kind="a",le="1.0"} 3.0' in text
    assert 'wait_seconds_bucket{kind="a",le="+Inf"} 4.0' in text
    assert 'wait_seconds_count{kind="a"} 4.0' in text
    assert 'wait_seconds_sum{kind="a"} 7.65' in text


def test_registering_a_name_twice_is_refused() -> None:
    registry = _registry()
    with pytest.raises(ValueError, match="jobs_total"):
        registry.counter("jobs_total", "again")


def test_snapshots_of_other_workers_are_summed_and_dead_gauges_dropped(tmp_path: Path) -> None:
    # Another process (a real one, so its pid can die) publishes its snapshot.
    script = (
        "import sys; sys.path.insert(0, '.');"
        "from tests.metrics.test_registry import _registry;"
        "from metrics.shared import SharedSnapshots;"
        "r = _registry(); c, g, h = r.metrics.values();"
        "c.inc(('a',), 5); c.inc(('b',), 1); g.inc_by(4); h.observe(0.5, ('a',));"
        f"SharedSnapshots(r, {str(tmp_path)!r}).publish()"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=os.getcwd())

    registry = _registry()
    counter, gauge, histogram = registry.metrics.values()
    counter.inc(("a",), 2)  # type: ignore[union-attr]
    gauge.inc_by(1)  # type: ignore[union-attr]
    histogram.observe(0.05, ("a",))  # type: ignore[union-attr]
    shared = SharedSnapshots(registry, tmp_path)
    shared.publish()
    merged = shared.merged()

    assert merged["jobs_total"][("a",)] == 7.0
    assert merged["jobs_total"][("b",)] == 1.0
    # The other worker exited: its counters stay (they must never go back), its gauge goes.
    assert merged["open_things"][()] == 1.0
    assert merged["wait_seconds"][("a",)][:3] == [1.0, 1.0, 0.0]
    assert len(list(tmp_path.glob("*.json"))) == 2
