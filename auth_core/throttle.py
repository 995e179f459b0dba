"""Failed attempts counted per client address, in a sliding window, in this process.

Per account, failures are counted in the database (users.failed_logins), so every worker and
replica sees them. This one is the per-address part; shared limits across replicas come with
the rate limiter (Redis).
"""

from __future__ import annotations

import time
from collections import deque


class FailureWindow:
    """At most `limit` failures per `window` seconds per key."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        entries = self._failures.get(key)
        if entries is None:
            return None
        while entries and now - entries[0] > self.window:
            entries.popleft()
        if not entries:
            del self._failures[key]
            return None
        return entries

    def blocked(self, key: str, now: float | None = None) -> float:
        """Seconds until `key` may try again (0 when it may now)."""
        now = time.monotonic() if now is None else now
        entries = self._recent(key, now)
        if entries is None or len(entries) < self.limit:
            return 0.0
        return max(0.0, self.window - (now - entries[0]))

    def count(self, key: str, now: float | None = None) -> int:
        """Failures of `key` inside the window now."""
        entries = self._recent(key, time.monotonic() if now is None else now)
        return 0 if entries is None else len(entries)

    def fail(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        entries = self._recent(key, now)
        if entries is None:
            if len(self._failures) >= self.max_keys:
                # Memory bound under a flood of addresses: the oldest key goes (clearing them
                # all would lift every block a flood of new addresses could buy).
                del self._failures[next(iter(self._failures))]
            entries = self._failures[key] = deque(maxlen=self.limit)
        entries.append(now)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)
