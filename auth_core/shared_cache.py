"""The shared tier of the credential cache: Redis, when configured, between a worker's own
cache and the database, so that a key, PAT or tenant read by one worker of one replica is not
read from the database again by every other.

An entry carries an epoch: the id up to which its writer knew every revocation when it read
the database (`RevocationSet.settled_id`). A reader takes it only if it knows of no
cache-voiding revocation (credential, tenant or user) with a newer id: anything revoked after
the read is then refused everywhere within the revocation feed's bound, as with a worker's own
cache. Redis errors make the tier step aside (the database answers instead).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

if TYPE_CHECKING:
    from auth_core.redis_link import RedisLink
    from auth_core.revocation import RevocationSet


Record = dict[str, Any]


class SharedCache:
    def __init__(
        self,
        link: RedisLink | None,
        revoked: RevocationSet,
        ttl: float,
        background: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.link = link
        self.revoked = revoked
        self.ttl_ms = max(1, int(ttl * 1000))
        self._background = background

    async def read_through(
        self,
        kind: str,
        name: str,
        load: Callable[[], Awaitable[Record | None]],
        usable: Callable[[Record], bool] | None = None,
    ) -> tuple[Record | None, bool]:
        """The record from Redis (and True), else from `load` (and False), which then goes
        into Redis, off the caller's path, for the other workers and replicas. `usable`: an
        entry it refuses (one another version wrote, say) is read again."""
        shared = await self.get(kind, name)
        if shared is not None and (usable is None or usable(shared)):
            return shared, True
        epoch = self.epoch()  # before the read: what the record reflects at least
        record = await load()
        if record is not None:
            self._background(self.put(kind, name, record, epoch))
        return record, False

    def epoch(self) -> int:
        """Take before reading the database for an entry to `put`."""
        return self.revoked.settled_id

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        link = self.link
        if link is None or not link.usable():
            return None
        try:
            raw = await link.client.get(link.key("cache", kind, name))
        except (RedisError, OSError) as exc:
            link.failed(exc)
            return None
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            if int(entry["epoch"]) < self.revoked.last_voiding_id:
                return None  # something was revoked since it was read
            record = entry["record"]
        except (ValueError, KeyError, TypeError):
            return None
        return record if isinstance(record, dict) else None

    async def put(self, kind: str, name: str, record: dict[str, Any], epoch: int) -> None:
        link = self.link
        if link is None or not link.usable():
            return
        value = json.dumps({"epoch": epoch, "record": record}, separators=(",", ":"))
        try:
            await link.client.set(link.key("cache", kind, name), value, px=self.ttl_ms)
        except (RedisError, OSError) as exc:
            link.failed(exc)
