"""Gateway processes for the lifecycle tests, stopped (or killed) whatever the test did."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import GatewayProcess, start_gateway_process


def worker_pids(process: GatewayProcess) -> set[int]:
    """The pids of the processes the gateway process forked (its workers)."""
    result = subprocess.run(
        ["ps", "--ppid", str(process.process.pid), "-o", "pid="],
        capture_output=True,
        text=True,
        check=False,
    )
    return {int(word) for word in result.stdout.split()}


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """`launch(routes_yaml, workers=N, env={...})`: a `gateway serve` child process."""
    started: list[GatewayProcess] = []

    def start(routes_yaml: str, **kwargs: Any) -> GatewayProcess:
        process = start_gateway_process(routes_yaml, tmp_path, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        try:
            process.stop(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in worker_pids(process):  # first, so that no worker is left orphaned
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.process.kill()
            process.process.wait()
