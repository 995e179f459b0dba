"""Metrics of all worker processes of one host, merged.

Each worker writes its snapshot to `<dir>/<pid>.json` about once a second (and on exit);
whichever worker answers `/metrics` merges every file with its own live values. Counters and
histograms of workers that died stay in the sum, so they never go backwards; gauges count only
for workers still alive, summed or, for some, their largest.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from metrics.registry import Gauge, Labels, Registry

Merged = dict[str, dict[Labels, Any]]


class SharedSnapshots:
    """Publishes this worker's snapshot and merges everyone's."""

    def __init__(self, registry: Registry, directory: str | Path | None) -> None:
        self.registry = registry
        self.directory = Path(directory) if directory else None
        self.pid = os.getpid()
        # Called before every snapshot: copy values kept elsewhere (the auth core's plain
        # counters, /proc) into the registry.
        self.refreshers: list[Callable[[], None]] = []

    def _refresh(self) -> None:
        for refresh in self.refreshers:
            refresh()

    def publish(self) -> None:
        """Write this worker's snapshot atomically (tmp file, then rename)."""
        if self.directory is None:
            return
        self._refresh()
        data = json.dumps({"pid": self.pid, "metrics": self.registry.snapshot()})
        target = self.directory / f"{self.pid}.json"
        tmp = self.directory / f".{self.pid}.tmp"
        tmp.write_text(data)
        tmp.replace(target)

    def merged(self) -> Merged:
        """Every worker's values summed: this worker live, the others from their files."""
        self._refresh()
        snapshots = [(self.pid, self.registry.snapshot(), True)]
        if self.directory is not None:
            for path in self.directory.glob("*.json"):
                with contextlib.suppress(OSError, ValueError):
                    data = json.loads(path.read_text())
                    pid = int(data["pid"])
                    if pid != self.pid:
                        snapshots.append((pid, data["metrics"], _alive(pid)))
        merged: Merged = {name: {} for name in self.registry.metrics}
        for _pid, snapshot, alive in snapshots:
            for name, rows in snapshot.items():
                metric = self.registry.metrics.get(name)
                if metric is None or (metric.kind == "gauge" and not alive):
                    continue
                into = merged[name]
                for labels, value in rows:
                    key = tuple(labels)
                    if metric.kind == "histogram":
                        row = into.get(key)
                        into[key] = (
                            list(value)
                            if row is None
                            else [a + b for a, b in zip(row, value, strict=True)]
                        )
                    elif isinstance(metric, Gauge) and metric.aggregate == "max":
                        known = into.get(key)
                        into[key] = value if known is None else max(known, value)
                    else:
                        into[key] = into.get(key, 0.0) + value
        return merged


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
