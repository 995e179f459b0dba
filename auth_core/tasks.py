"""Stopping background tasks so that shutting down always ends.

A task blocked in a library call does not always end when cancelled: redis-py, for one, can
lose a cancellation that lands while its own read timeout expires, and the task then waits on
its socket for good (seen as a SIGTERM that never finished after a Redis restart). Whoever
stops a task therefore waits a bounded time, says which task did not end, and goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("auth_core")

STOP_TIMEOUT = 2.0  # seconds a cancelled task gets to end


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], seconds: float = STOP_TIMEOUT) -> None:
    """Cancel `tasks` and wait for them, at most `seconds` in all."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    if not pending:
        return
    _, stuck = await asyncio.wait(pending, timeout=seconds)
    for task in stuck:
        log.warning("background task %s did not stop within %gs; left behind", task, seconds)
