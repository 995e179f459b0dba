"""Work the auth core runs off the caller's path (audit entries of refusals, mails, writes to
the shared cache), kept referenced until it ends so that closing can wait for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("auth_core")


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        """How many are still running."""
        return len(self._tasks)

    def run(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` without waiting for it (kept referenced; failures are logged)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background work failed: %s", task.exception())

    async def settle(self, seconds: float) -> None:
        """Wait (at most `seconds`) for the work already begun."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=seconds)

    async def drain(self) -> None:
        """Wait, without a bound, until nothing runs: the work begun by the work awaited too."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
