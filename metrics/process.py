"""This process's CPU time, memory, descriptors and start time, read from /proc as
prometheus_client's ProcessCollector reads them (which a multi-process set-up cannot use: each
worker would answer for itself alone). Each worker reads its own before publishing its
snapshot; the merge sums them over workers (metrics.shared)."""

from __future__ import annotations

import contextlib
import os
import resource
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _boot_time() -> float:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


_BOOT = _boot_time()


class ProcessStats:
    """One reading of /proc/self; every field 0 where /proc cannot be read (not Linux)."""

    __slots__ = ("cpu_seconds", "max_fds", "open_fds", "resident_bytes", "start_time")

    def __init__(self) -> None:
        self.cpu_seconds = 0.0
        self.resident_bytes = 0.0
        self.start_time = 0.0
        self.open_fds = 0.0
        self.max_fds = 0.0
        try:
            stat = Path("/proc/self/stat").read_bytes()
        except OSError:
            return
        # The command name (field 2) may hold spaces and parentheses: split after its end.
        fields = stat[stat.rindex(b")") + 2 :].split()
        # fields[0] is field 3 of proc(5): utime is 14, stime 15, starttime 22, rss 24.
        self.cpu_seconds = (int(fields[11]) + int(fields[12])) / _TICKS
        self.start_time = _BOOT + int(fields[19]) / _TICKS
        self.resident_bytes = float(int(fields[21]) * _PAGE)
        with contextlib.suppress(OSError):
            self.open_fds = float(len(os.listdir("/proc/self/fd")))
        self.max_fds = float(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
