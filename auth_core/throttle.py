"""Failed logins, held back: per client address in a sliding window (FailureWindow, this
process), and per (account, client address) pair with growing delays plus a far higher
account-wide limit (LoginThrottle: in Redis when configured, so every worker and replica
counts together, else in this process).

The pair is what one address can do to one account: after a few wrong passwords it waits a
second, then two, four, ... So whoever guesses from one address is slowed down at once, but
the account's owner, from their own address, is not locked out by somebody else's guessing.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass

from redis.exceptions import RedisError

from auth_core.redis_link import RedisLink

FREE_FAILURES = 5  # failures in a row of one pair before it has to wait ...
FIRST_DELAY = 1.0  # ... this long, doubling with every further failure ...
MAX_DELAY = 900.0  # ... up to this
PAIR_MEMORY = 900.0  # a pair's count is forgotten this long after its wait ends
ACCOUNT_LIMIT = 100  # failures of one account, from every address together ...
ACCOUNT_WINDOW = 900.0  # ... within this many seconds, then every address waits
MAX_LOCAL_PAIRS = 100_000


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


def delay_after(failures: int) -> float:
    """Seconds a pair waits after its `failures`-th failure in a row."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY, FIRST_DELAY * 2.0 ** min(failures - FREE_FAILURES, 32))


def account_subject(email: str) -> str:
    """What an account is counted by: its address as typed (normalised), hashed, so that
    unknown addresses are held back exactly like known ones and no address sits in Redis."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a login may not be tried now, and for how long."""

    seconds: float
    scope: str  # "pair" (this account from this address) or "account" (from anywhere)


# KEYS: the pair's count, the pair's wait, the account's count.
# ARGV: free failures, first delay, max delay, pair memory, account window (seconds).
# Returns the pair's count and its wait in milliseconds.
_FAILED = """
local n = redis.call('INCR', KEYS[1])
local delay = 0
if n >= tonumber(ARGV[1]) then
  delay = math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) * 2 ^ math.min(n - tonumber(ARGV[1]), 32))
end
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[4]) + delay) * 1000))
if delay > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', math.ceil(delay * 1000))
end
if redis.call('INCR', KEYS[3]) == 1 then
  redis.call('PEXPIRE', KEYS[3], math.ceil(tonumber(ARGV[5]) * 1000))
end
return {n, math.floor(delay * 1000)}
"""


class LoginThrottle:
    """Failed logins per (account, address) pair and per account."""

    def __init__(self, link: RedisLink | None) -> None:
        self.link = link
        self._script = link.client.register_script(_FAILED) if link is not None else None
        # pair -> (failures in a row, monotonic time the wait ends, time it is forgotten)
        self._pairs: dict[str, tuple[int, float, float]] = {}
        self._accounts = FailureWindow(ACCOUNT_LIMIT, ACCOUNT_WINDOW)

    def _keys(self, subject: str, address: str) -> list[str]:
        assert self.link is not None
        return [
            self.link.key("login", "n", subject, address),
            self.link.key("login", "wait", subject, address),
            self.link.key("login", "account", subject),
        ]

    async def held(self, subject: str, address: str) -> Hold | None:
        """Whether this pair (or the account as a whole) must wait before trying again."""
        link = self.link
        if link is not None and link.usable():
            _, wait_key, account_key = self._keys(subject, address)
            try:
                async with link.client.pipeline(transaction=False) as pipe:
                    pipe.pttl(wait_key)
                    pipe.get(account_key)
                    pipe.pttl(account_key)
                    wait_ms, account_count, account_ms = await pipe.execute()
            except (RedisError, OSError) as exc:
                link.failed(exc)
            else:
                link.succeeded()
                if int(wait_ms) > 0:
                    return Hold(int(wait_ms) / 1000, "pair")
                if int(account_count or 0) >= ACCOUNT_LIMIT and int(account_ms) > 0:
                    return Hold(int(account_ms) / 1000, "account")
                return None
        return self._held_here(subject, address, time.monotonic())

    def _held_here(self, subject: str, address: str, now: float) -> Hold | None:
        entry = self._pairs.get(f"{subject}|{address}")
        if entry is not None and entry[1] > now:
            return Hold(entry[1] - now, "pair")
        account = self._accounts.blocked(subject, now)
        return Hold(account, "account") if account else None

    async def failed(self, subject: str, address: str) -> float:
        """Count a failure; the seconds the pair now has to wait (0: none yet)."""
        link = self.link
        if link is not None and self._script is not None and link.usable():
            try:
                reply = await self._script(
                    keys=self._keys(subject, address),
                    args=[FREE_FAILURES, FIRST_DELAY, MAX_DELAY, PAIR_MEMORY, ACCOUNT_WINDOW],
                )
            except (RedisError, OSError) as exc:
                link.failed(exc)
            else:
                link.succeeded()
                return int(reply[1]) / 1000
        return self._failed_here(subject, address, time.monotonic())

    def _failed_here(self, subject: str, address: str, now: float) -> float:
        key = f"{subject}|{address}"
        pairs = self._pairs
        entry = pairs.get(key)
        count = 1 if entry is None or entry[2] <= now else entry[0] + 1
        delay = delay_after(count)
        if entry is None and len(pairs) >= MAX_LOCAL_PAIRS:
            self._prune(now)
        pairs[key] = (count, now + delay, now + delay + PAIR_MEMORY)
        self._accounts.fail(subject, now)
        return delay

    def _prune(self, now: float) -> None:
        # Forgotten pairs go first; under a flood of made-up addresses, the pairs nearest to
        # being forgotten, never the ones waiting longest (those are being held back).
        self._pairs = {key: entry for key, entry in self._pairs.items() if entry[2] > now}
        if len(self._pairs) >= MAX_LOCAL_PAIRS * 3 // 4:
            kept = sorted(self._pairs.items(), key=lambda item: item[1][1])
            self._pairs = dict(kept[len(kept) // 2 :])

    async def succeeded(self, subject: str, address: str) -> None:
        """The right password from this address: its pair starts again from nothing (the
        account-wide count stays: other addresses' guessing did not stop)."""
        self._pairs.pop(f"{subject}|{address}", None)
        link = self.link
        if link is not None and link.usable():
            count_key, wait_key, _ = self._keys(subject, address)
            try:
                await link.client.delete(count_key, wait_key)
            except (RedisError, OSError) as exc:
                link.failed(exc)

    async def forget_account(self, subject: str, address: str) -> None:
        """A password reset: the account-wide count and this address's pair start again."""
        await self.succeeded(subject, address)
        self._accounts.forget(subject)
        link = self.link
        if link is not None and link.usable():
            try:
                await link.client.delete(self._keys(subject, address)[2])
            except (RedisError, OSError) as exc:
                link.failed(exc)
