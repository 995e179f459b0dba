"""Notices when routes.yaml changes on disk.

Polls `stat()` (cheap, and works on every filesystem, bind mounts and ConfigMaps included)
and calls back when size, mtime or inode change; the callback compares content hashes, so a
touch without a change costs one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

Signature = tuple[int, int, int] | None


def _signature(path: Path) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ConfigWatcher:
    """Calls `on_change` after the file at `path` changes."""

    def __init__(self, path: Path, interval: float, on_change: Callable[[], object]) -> None:
        self.path = path
        self.interval = interval
        self.on_change = on_change
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        last = _signature(self.path)
        while True:
            await asyncio.sleep(self.interval)
            current = _signature(self.path)
            if current is not None and current != last:
                last = current
                self.on_change()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
