"""Revoking, and what the revocations known here allow a cache: a revocation is recorded in
the table, applied in this worker at once and announced to the others (which follow the
table); an entry read before it, here or in the shared tier, must not answer after it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from auth_core.config import AuthSettings
from auth_core.feed import RevocationFeed
from auth_core.revocation import RevocationSet
from auth_core.stats import AuthStats
from auth_core.store.records import Store

if TYPE_CHECKING:
    from auth_core.models import Principal


class Revoker:
    def __init__(
        self,
        store: Store,
        revoked: RevocationSet,
        feed: RevocationFeed,
        settings: AuthSettings,
        stats: AuthStats,
        token_cache: dict[str, tuple[Principal, float]],
    ) -> None:
        self._revocations = store.revocations
        self._revoked = revoked
        self._feed = feed
        self._settings = settings
        self._stats = stats
        self._token_cache = token_cache  # the access tokens the core verified (emptied)

    async def revoke(self, kind: str, value: str, until: float | None = None) -> None:
        """Record a revocation and apply it here at once (other workers follow the table)."""
        if until is None:
            # Nothing it names may outlive it: the longest access token issued from now on,
            # nor a cache entry (here, in Redis, or served stale) read before it.
            settings = self._settings
            until = (
                time.time()
                + 60.0
                + max(settings.access_ttl, settings.cache_ttl + settings.stale_window)
            )
        revocation = await self._revocations.add(kind, value, until)
        self._revoked.apply(revocation, read=False)
        self._token_cache.clear()
        self._feed.wake.set()  # read the table up to it (and whatever came just before) now
        await self._feed.announce(revocation.id)

    def serves_stale(self, generation: int, until: float) -> bool:
        """Whether a cache entry past its lifetime may still answer while the database is
        unreachable: nothing was revoked since it was read, and it is inside the stale window.
        Counted as a stale hit when it may."""
        if generation != self._revoked.generation:
            return False
        if self._feed.announced > self._revoked.last_id:
            return False  # a revocation was announced that could not be read: trust nothing
        if time.monotonic() - until > self._settings.stale_window:
            return False
        self._stats.stale_served += 1
        return True
