"""`last_used_at` of API keys and PATs, written in batches rather than on every request.

Each worker remembers the newest use of every credential it served and writes them every
FLUSH_INTERVAL seconds, and once more when the auth core closes (so a clean shutdown loses
nothing). The UPDATE only moves a timestamp forward, so workers never undo each other.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from auth_core.store import DatabaseUnavailable

log = logging.getLogger("auth_core")

FLUSH_INTERVAL = 30.0

Writer = Callable[[Iterable[tuple[str, float]]], Awaitable[None]]


class UsageRecorder:
    def __init__(self, write: Writer) -> None:
        self.write = write
        self.pending: dict[str, float] = {}

    def used(self, credential_id: str, at: float) -> None:
        self.pending[credential_id] = at

    async def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, {}
        try:
            await self.write(sorted(batch.items()))
        except DatabaseUnavailable as exc:
            # Keep them for the next flush, unless something newer came meanwhile.
            for credential_id, at in batch.items():
                if self.pending.get(credential_id, 0.0) < at:
                    self.pending[credential_id] = at
            log.warning("cannot record credential use: %s", exc)
