"""The process metrics and the build info of a gateway of two worker processes, through
/metrics: each worker reads its own /proc/self, the one that answers merges them (CPU, memory and
descriptors summed, the start time the latest, build info and the worker count as one host)."""

from __future__ import annotations

import os
import platform
import resource
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support import Upstream, routes, start_gateway_process

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def started_at(pid: int) -> float:
    """A process's start, seconds since the epoch, from proc(5): boot time plus field 22."""
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    stat = Path(f"/proc/{pid}/stat").read_text()
    return boot + int(stat[stat.rindex(")") + 2 :].split()[19]) / os.sysconf("SC_CLK_TCK")


def resident(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return float(kib) * 1024


def test_two_workers_are_summed_and_the_build_is_named_once(
    tmp_path: Path, upstream: Upstream
) -> None:
    gateway = start_gateway_process(
        routes({"echo": [upstream.url]}, "{name: echo, path: /echo, upstream: echo, auth: none}"),
        tmp_path,
        workers=2,
    )
    try:
        # Each worker publishes its values about once a second: wait for both.
        deadline = time.monotonic() + 30
        samples = scrape(gateway.url)
        while samples.get(("gateway_workers", ())) != 2.0:
            assert time.monotonic() < deadline, "the second worker never published"
            time.sleep(0.1)
            samples = scrape(gateway.url)
        workers = children(gateway.process.pid)
        assert len(workers) == 2
        each = [resident(pid) for pid in workers]
        youngest = max(started_at(pid) for pid in workers)
    finally:
        assert gateway.stop() == 0

    compiled = "true" if os.environ.get("GATEWAY_TEST_COMPILED") == "1" else "false"
    build = (("compiled", compiled), ("python", platform.python_version()), ("version", "0.1.0"))
    assert samples[("gateway_build_info", build)] == 1.0
    assert [name for name, _ in samples if name == "gateway_build_info"] == ["gateway_build_info"]
    # The youngest worker's start, to the clock tick.
    assert abs(samples[("process_start_time_seconds", ())] - youngest) < 0.02
    # Both workers' memory: more than either alone (each holds the whole gateway), about their
    # sum (read a moment apart from the values published).
    memory = samples[("process_resident_memory_bytes", ())]
    assert 1.5 * max(each) < memory
    assert 0.75 * sum(each) <= memory <= 1.25 * sum(each)
    assert samples[("process_open_fds", ())] >= 2 * 4  # stdio and the listening socket, each
    # The workers inherit this process's limit: two of it.
    assert samples[("process_max_fds", ())] == 2 * resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert samples[("process_cpu_seconds_total", ())] > 0
