"""Notices when routes.yaml (or the TLS certificates) change on disk.

Polls `stat()` (cheap, and works on every filesystem, bind mounts and ConfigMaps included)
and calls back when size, mtime or inode change; the callback compares content hashes, so a
touch without a change costs one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

Signature = tuple[tuple[int, int, int] | None, ...]


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)  # follows symlinks: certbot's and cert-manager's swaps show
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ConfigWatcher:
    """Calls `on_change` after the file at `path` changes (or any of the paths `path()` gives:
    the set may change with each reload, as certificates come and go)."""

    def __init__(
        self,
        path: Path | Callable[[], Sequence[Path]],
        interval: float,
        on_change: Callable[[], object],
    ) -> None:
        self.paths: Callable[[], Sequence[Path]] = (
            (lambda: (path,)) if isinstance(path, Path) else path
        )
        self.interval = interval
        self.on_change = on_change
        self._task: asyncio.Task[None] | None = None

    def _signature(self) -> Signature:
        return tuple(_stat(path) for path in self.paths())

    def start(self) -> None:
        # The first look now, not when the task first runs: a change made in between is seen.
        self._task = asyncio.get_running_loop().create_task(self._run(self._signature()))

    async def _run(self, last: Signature) -> None:
        while True:
            await asyncio.sleep(self.interval)
            current = self._signature()
            if current != last and any(stat is not None for stat in current):
                # When the paths themselves change with the reload, the next look finds a
                # difference, and that reload finds nothing new: harmless.
                last = current
                self.on_change()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
