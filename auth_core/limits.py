"""Rate limits: GCRA (the generic cell rate algorithm), atomic in Redis, in process without it.

A limit of `limit` requests `per` seconds lets a key through when its theoretical arrival time
(TAT), advanced by one emission interval T = per / limit, is no further than `per` ahead of now:
a burst of `limit` at once, then one every T. One number a key, no window edges to game.

Several limits are checked together (layered: a tenant's limit and a key's limit, say): the
request passes only if every one has room, and only then is every one charged, so a refusal by
one limit costs the others nothing. In Redis that is one Lua script a check, on Redis' clock, so
every replica counts against the same numbers. Without Redis, or while it is away, each worker
counts by itself (and `degraded` says so).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from auth_core.redis_link import RedisLink

MAX_LOCAL_KEYS = 200_000


@dataclass(frozen=True, slots=True)
class Rate:
    """`limit` requests `per` seconds."""

    limit: int
    per: float

    @property
    def interval(self) -> float:
        return self.per / self.limit

    def policy(self) -> str:
        """The `RateLimit-Policy` item: `100;w=60`."""
        return f"{self.limit};w={math.ceil(self.per)}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one check, for the answer's RateLimit-* headers."""

    allowed: bool
    limit: int  # of the limit with the least room
    remaining: int
    reset: float  # seconds until that limit is full again
    retry_after: float  # seconds until a refused request would pass (0 when allowed)
    policy: str


TOLERANCE = 1e-6  # seconds: sums of intervals must not refuse the last of an exact burst


def _outcome(rates: Sequence[Rate], ahead: Sequence[float], allowed: bool) -> Verdict:
    """`ahead[i]`: how far the i-th key's TAT would be ahead of now with this request. The
    limit reported is the one with the least room; on a refusal, the one that refused longest."""
    worst = 0
    retry = 0.0
    remaining = []
    for index, rate in enumerate(rates):
        room = (rate.per - ahead[index]) / rate.interval
        remaining.append(max(0, math.floor(room + 1e-9)))
        retry = max(retry, ahead[index] - rate.per)
        if allowed:
            if remaining[index] < remaining[worst]:
                worst = index
        elif ahead[index] - rate.per > ahead[worst] - rates[worst].per:
            worst = index
    rate = rates[worst]
    return Verdict(
        allowed=allowed,
        limit=rate.limit,
        remaining=remaining[worst] if allowed else 0,
        reset=max(0.0, ahead[worst] if allowed else ahead[worst] - rate.interval),
        retry_after=0.0 if allowed else max(retry, 0.001),
        policy=", ".join(rate.policy() for rate in rates),
    )


class LocalLimiter:
    """GCRA in this process: a dict of TATs (monotonic clock)."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        # Keys refused recently: kept through a prune, whatever else goes (a flood of new keys
        # must not give a caller who is being held back its burst again).
        self._held: dict[str, float] = {}

    def check(
        self, keys: Sequence[str], rates: Sequence[Rate], now: float | None = None
    ) -> Verdict:
        now = time.monotonic() if now is None else now
        tats = self._tat
        new = [
            max(tats.get(key, now), now) + rate.interval
            for key, rate in zip(keys, rates, strict=True)
        ]
        ahead = [tat - now for tat in new]
        allowed = all(ahead[i] <= rate.per + TOLERANCE for i, rate in enumerate(rates))
        if not allowed:
            if len(self._held) >= MAX_LOCAL_KEYS:
                self._held = {key: tat for key, tat in self._held.items() if tat > now}
            for key in keys:
                if key in tats:
                    self._held[key] = tats[key]
        if allowed:
            if len(tats) >= MAX_LOCAL_KEYS:
                self._prune(now)
            for key, tat in zip(keys, new, strict=True):
                tats[key] = tat
        return _outcome(rates, ahead, allowed)

    def peek(self, key: str, rate: Rate, now: float | None = None) -> tuple[int, float]:
        """(remaining, seconds until full) of one key, charging nothing."""
        now = time.monotonic() if now is None else now
        ahead = max(self._tat.get(key, now), now) - now
        return max(0, math.floor((rate.per - ahead) / rate.interval + 1e-9)), ahead

    def _prune(self, now: float) -> None:
        # Keys whose TAT has passed are as good as absent. If that frees too little (a flood
        # of new keys, addresses made up by the thousand), the keys nearest to their full
        # allowance go, never the ones furthest ahead: those are the callers being held back.
        self._tat = {key: tat for key, tat in self._tat.items() if tat > now}
        self._held = {key: tat for key, tat in self._held.items() if tat > now}
        if len(self._tat) >= MAX_LOCAL_KEYS * 3 // 4:
            kept = sorted(self._tat.items(), key=lambda item: item[1])[len(self._tat) // 2 :]
            self._tat = dict(kept)
            for key, tat in self._held.items():
                self._tat[key] = max(tat, self._tat.get(key, 0.0))


# KEYS: the limits' keys; ARGV: interval and period (seconds) of each, in KEYS' order.
# Returns: allowed (0/1), then for each key how far its TAT would be ahead of now, in
# microseconds (integers survive Redis' reply conversion; floats would be truncated).
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local new = {}
local allowed = 1
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local per = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  new[i] = tat + interval
  if new[i] - now > per + 0.000001 then allowed = 0 end
end
local out = {allowed}
for i = 1, #KEYS do
  local ahead = new[i] - now
  if allowed == 1 then
    redis.call('SET', KEYS[i], string.format('%.6f', new[i]), 'PX', math.ceil(ahead * 1000) + 1)
  end
  out[i + 1] = math.floor(ahead * 1000000)
end
return out
"""


class Limiter:
    """The limiter of one worker: Redis when configured and reachable, else local."""

    def __init__(self, link: RedisLink | None) -> None:
        self.link = link
        self.local = LocalLimiter()
        self._script = link.client.register_script(_GCRA) if link is not None else None

    @property
    def shared(self) -> bool:
        return self.link is not None and self.link.healthy

    async def check(self, keys: Sequence[str], rates: Sequence[Rate]) -> Verdict:
        link = self.link
        if link is None or self._script is None or not link.usable():
            return self.local.check(keys, rates)
        args: list[float] = []
        for rate in rates:
            args += (rate.interval, rate.per)
        try:
            reply = await self._script(keys=[link.key("rl", key) for key in keys], args=args)
        except (RedisError, OSError) as exc:
            link.failed(exc)
            return self.local.check(keys, rates)
        link.succeeded()
        return _outcome(rates, [int(value) / 1e6 for value in reply[1:]], bool(int(reply[0])))

    async def peek(self, key: str, rate: Rate) -> tuple[int, float]:
        """(remaining, seconds until full) of one key, charging nothing."""
        link = self.link
        if link is not None and link.usable():
            try:
                raw = await link.client.get(link.key("rl", key))
                server = await link.client.time()
            except (RedisError, OSError) as exc:
                link.failed(exc)
            else:
                now = float(server[0]) + float(server[1]) / 1e6
                ahead = max(float(raw or 0.0), now) - now
                return max(0, math.floor((rate.per - ahead) / rate.interval + 1e-9)), ahead
        return self.local.peek(key, rate)
