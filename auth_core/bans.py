"""Bans (docs/authentication.md): repeated failed credentials from one client address (bad logins,
bad keys, bad tokens) ban that address for a while; admins list and lift bans.

A ban is a row of the revocation table (kind `ban`, the address, until when), so it reaches
every worker and replica the way a revocation does, and a lift is a later `unban` row. The
failures are counted per worker in a sliding window, and with Redis in one shared counter an
address (so several workers and replicas cannot each grant an attacker its own allowance).
Every ban and lift is audited. How many failures, in what window, and how long a ban lasts
are settings (GATEWAY_BAN_THRESHOLD, _WINDOW, _DURATION; 0 for any: nothing is counted or
banned, though a ban already written still holds until it ends or is lifted).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from auth_core.audit import AuditTrail
from auth_core.background import Background
from auth_core.config import AuthSettings
from auth_core.errors import ErrorCode
from auth_core.redis_link import RedisLink
from auth_core.revocation import BAN, UNBAN, RevocationSet
from auth_core.revoker import Revoker
from auth_core.store.records import Store
from auth_core.throttle import FailureWindow

if TYPE_CHECKING:
    from auth_core.calls import CallInfo

# Refusals that say a credential was wrong (not expired, revoked or missing, which honest
# clients run into).
COUNTED = frozenset(
    {ErrorCode.INVALID_TOKEN, ErrorCode.INVALID_API_KEY, ErrorCode.INVALID_CREDENTIALS}
)


class Bans:
    def __init__(
        self,
        *,
        store: Store,
        settings: AuthSettings,
        audit: AuditTrail,
        revoker: Revoker,
        revoked: RevocationSet,
        redis: RedisLink | None,
        background: Background,
    ) -> None:
        self._store = store
        self._audit = audit
        self._revoker = revoker
        self._revoked = revoked
        self._redis = redis
        self._background = background
        self.enabled = settings.bans_enabled
        self.threshold = settings.ban_threshold
        self.window = settings.ban_window
        self.duration = settings.ban_duration
        self.failures = FailureWindow(max(1, self.threshold), self.window)
        self._banning: set[str] = set()  # addresses whose ban is being written

    def banned_for(self, address: str) -> float:
        """Seconds the address stays banned (0: it is not)."""
        return self._revoked.banned_for(address, time.time())

    def failed(self, address: str, code: str, call: CallInfo) -> None:
        """Count a refused credential; ban the address when it has had enough."""
        if not self.enabled or code not in COUNTED or not address or self.banned_for(address):
            return
        self.failures.fail(address)
        redis = self._redis
        if redis is not None and redis.usable():
            self._background.run(self._count_shared(address, call))
        elif self.failures.blocked(address):
            self._ban_later(address, call)

    async def _count_shared(self, address: str, call: CallInfo) -> None:
        link = self._redis
        assert link is not None
        key = link.key("fails", address)
        try:
            async with link.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, max(1, math.ceil(self.window)), nx=True)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            link.failed(exc)
            count = self.threshold if self.failures.blocked(address) else 0
        if int(count) >= self.threshold:
            self._ban_later(address, call)
            try:
                await link.client.delete(key)
            except (RedisError, OSError) as exc:
                link.failed(exc)

    def _ban_later(self, address: str, call: CallInfo) -> None:
        if address in self._banning:
            return
        self._banning.add(address)
        self._background.run(self.ban(address, "repeated failed credentials", call))

    async def ban(
        self, address: str, reason: str, call: CallInfo, *, seconds: float | None = None
    ) -> None:
        seconds = self.duration if seconds is None else seconds
        try:
            await self._revoker.revoke(BAN, address, time.time() + seconds)
            self.failures.forget(address)
            await self._audit.append(
                "ip_ban", "banned", call, address=address, reason=reason, seconds=seconds
            )
        finally:
            self._banning.discard(address)

    async def lift(self, address: str, actor_id: str | None, call: CallInfo) -> bool:
        """Lift the address's ban; False when it was not banned (by the table, which this
        worker may not have read to the end yet)."""
        ends = [ban["until"] for ban in await self.active() if ban["address"] == address]
        if not ends:
            return False
        # The lift's row outlives the ban it lifts and any that another replica may still be
        # writing (at most a duration from now), and a day more (RevocationSet.prune).
        until = max(*ends, time.time() + self.duration)
        await self._revoker.revoke(UNBAN, address, until + 86400.0)
        self.failures.forget(address)
        await self._audit.append("ip_ban", "lifted", call, actor_id=actor_id, address=address)
        return True

    async def active(self) -> list[dict[str, Any]]:
        """The bans in force, from the table (so every replica's are listed), by the rule the
        workers enforce (RevocationSet.apply): the latest ban of an address, unless a lift at
        or after it, whatever order the rows were written in."""
        rows = await self._store.revocations.of_kinds((BAN, UNBAN))
        lifted: dict[str, float] = {}
        for row in rows:
            if row.kind == UNBAN:
                lifted[row.value] = max(row.at, lifted.get(row.value, 0.0))
        bans: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row.kind != BAN or row.at <= lifted.get(row.value, 0.0):
                continue
            known = bans.get(row.value)
            if known is None or known["banned_at"] < row.at:
                bans[row.value] = {
                    "address": row.value,
                    "banned_at": row.at,
                    "until": row.expires_at,
                }
        now = time.time()
        return [ban for ban in bans.values() if ban["until"] > now]
