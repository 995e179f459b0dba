"""GCRA rate limits: the arithmetic on a clock the test holds (and at the limit's boundary),
layered limits that charge nothing when one refuses (locally and in the Redis script), what a
verdict tells the client (RateLimit-*, Retry-After), the Redis limiter shared by two "replicas"
(their own prefix on the shared server) and the keys its script leaves, falling back to local
counting while Redis is away, and the auth core's default endpoint limits."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from auth_core.api import build_api
from auth_core.api.auth_endpoints import LOGIN_RATE
from auth_core.api.router import ApiCall, AuthApi
from auth_core.errors import RateLimited
from auth_core.limits import MAX_LOCAL_KEYS, Limiter, LocalLimiter, Rate, Verdict
from auth_core.redis_link import RETRY_AFTER, RedisLink
from auth_core.service import AuthCore, CallInfo
from gateway.pipeline.rate_limit import headers, refusal
from tests import support
from tests.auth_core.helpers import PASSWORD
from tests.conftest import REDIS_URL

THREE_A_MINUTE = Rate(3, 60.0)


def test_a_burst_of_the_limit_then_one_every_interval() -> None:
    limiter = LocalLimiter()
    verdicts = [limiter.check(["k"], [THREE_A_MINUTE], now=1000.0) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert verdicts[0].limit == 3
    assert verdicts[0].policy == "3;w=60"
    refused = verdicts[3]
    assert refused.retry_after == pytest.approx(20.0)
    # Just before the interval has passed: still refused; at it: one more.
    assert not limiter.check(["k"], [THREE_A_MINUTE], now=1019.9).allowed
    again = limiter.check(["k"], [THREE_A_MINUTE], now=1020.0)
    assert again.allowed
    assert again.remaining == 0
    assert again.reset == pytest.approx(60.0)
    # Idle for a whole period: the full burst is back.
    assert limiter.peek("k", THREE_A_MINUTE, now=1080.0) == (3, 0.0)


def test_keys_are_counted_apart() -> None:
    limiter = LocalLimiter()
    for _ in range(3):
        assert limiter.check(["a"], [THREE_A_MINUTE], now=0.0).allowed
    assert not limiter.check(["a"], [THREE_A_MINUTE], now=0.0).allowed
    assert limiter.check(["b"], [THREE_A_MINUTE], now=0.0).allowed


def test_layered_limits_charge_nothing_when_one_refuses() -> None:
    limiter = LocalLimiter()
    tenant, key = Rate(10, 60.0), Rate(2, 60.0)
    for _ in range(2):
        assert limiter.check(["tenant", "key"], [tenant, key], now=0.0).allowed
    refused = limiter.check(["tenant", "key"], [tenant, key], now=0.0)
    assert not refused.allowed
    assert refused.limit == 2  # the limit that refused is the one reported
    assert refused.policy == "10;w=60, 2;w=60"
    # The refused request did not use up the tenant's room: another key of it still has 8.
    assert limiter.peek("tenant", tenant, now=0.0)[0] == 8
    assert limiter.check(["tenant", "other"], [tenant, key], now=0.0).allowed
    assert limiter.peek("tenant", tenant, now=0.0)[0] == 7


async def test_redis_counts_for_every_replica(redis_prefix: str) -> None:
    first = Limiter(RedisLink(REDIS_URL, redis_prefix))
    second = Limiter(RedisLink(REDIS_URL, redis_prefix))
    try:
        answers = []
        for index in range(6):
            limiter = first if index % 2 == 0 else second
            answers.append((await limiter.check(["shared"], [Rate(5, 60.0)])).allowed)
        assert answers == [True] * 5 + [False]
        refused = await second.check(["shared"], [Rate(5, 60.0)])
        assert refused.retry_after == pytest.approx(12.0, abs=0.5)
        assert (await first.peek("shared", Rate(5, 60.0)))[0] == 0
        # Layered in Redis: refused by the tight one, the loose one is not charged.
        loose, tight = Rate(100, 60.0), Rate(1, 60.0)
        assert (await first.check(["loose", "tight"], [loose, tight])).allowed
        assert not (await second.check(["loose", "tight"], [loose, tight])).allowed
        assert (await first.peek("loose", loose))[0] == 99
        assert first.shared
    finally:
        for limiter in (first, second):
            assert limiter.link is not None
            await limiter.link.close()


async def test_without_redis_each_worker_counts_alone_until_it_returns(tmp_path: Path) -> None:
    with support.redis_server(tmp_path) as server:
        link = RedisLink(server.url, "t:")
        limiter = Limiter(link)
        try:
            assert (await limiter.check(["k"], [THREE_A_MINUTE])).allowed
            server.stop()
            # Redis is gone: the local limiter answers (its own count, from zero).
            answers = [(await limiter.check(["k"], [THREE_A_MINUTE])).allowed for _ in range(4)]
            assert answers == [True, True, True, False]
            assert not link.healthy
            server.start()
            await asyncio.sleep(RETRY_AFTER)  # a failed Redis is left alone this long
            assert (await limiter.check(["k"], [THREE_A_MINUTE])).allowed
            assert link.healthy
        finally:
            await link.close()


# -- at the boundaries, and what the client is told ---------------------------------------------


def header(verdict: Verdict, name: str) -> str:
    if name == "Retry-After":
        return str(refusal(verdict).headers[name])
    return dict(headers(verdict))[name.encode()].decode()


# -- the local limiter at its boundaries ------------------------------------------------------


@pytest.mark.parametrize(
    "rate",
    [Rate(9, 1.0), Rate(10, 1.0), Rate(7, 60.0), Rate(3, 0.5), Rate(100, 60.0)],
    ids=lambda rate: f"{rate.limit}/{rate.per:g}s",
)
def test_a_burst_of_exactly_the_limit_at_one_instant_passes(rate: Rate) -> None:
    """GCRA: "a burst of `limit` at once". The TAT is a sum of `limit` intervals; rounding in
    that sum must not refuse the last request of the burst."""
    limiter = LocalLimiter()
    answers = [limiter.check(["k"], [rate], now=1000.0).allowed for _ in range(rate.limit)]
    assert answers == [True] * rate.limit
    assert not limiter.check(["k"], [rate], now=1000.0).allowed


def test_the_boundary_of_one_interval() -> None:
    """Edge case: refused just before one interval has passed, let through at it."""
    limiter = LocalLimiter()
    rate = Rate(4, 60.0)  # interval 15 s, exact in binary
    for _ in range(4):
        assert limiter.check(["k"], [rate], now=0.0).allowed
    refused = limiter.check(["k"], [rate], now=0.0)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(15.0)
    assert not limiter.check(["k"], [rate], now=14.999).allowed
    assert limiter.check(["k"], [rate], now=15.0).allowed


def test_a_refusal_reports_the_limit_that_refused() -> None:
    """Layered: the tenant's limit (2 a minute) still has this request's room; the key's
    limit (1 a minute) is used up. The refusal's RateLimit-Limit and RateLimit-Reset must be
    the key's, not those of the tenant's limit, which did not refuse."""
    limiter = LocalLimiter()
    tenant, key = Rate(2, 60.0), Rate(1, 60.0)
    # Another key of the tenant used one of its two; this key used its only one.
    assert limiter.check(["tenant", "other-key"], [tenant, key], now=0.0).allowed
    assert limiter.check(["this-key"], [key], now=0.0).allowed
    refused = limiter.check(["tenant", "this-key"], [tenant, key], now=0.0)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(60.0)
    assert refused.limit == 1, "RateLimit-Limit names the tenant's limit, which had room"
    # The key's limit is full again in 60 s: the reset cannot be sooner than the retry.
    assert refused.reset >= refused.retry_after, (
        f"RateLimit-Reset {refused.reset} < Retry-After {refused.retry_after}"
    )


def test_waiting_retry_after_is_enough() -> None:
    """A client that waits the whole seconds of Retry-After must get through; the header is
    rounded up, never down, even for a fraction of a millisecond."""
    limiter = LocalLimiter()
    rate = Rate(3, 60.0)
    for _ in range(3):
        assert limiter.check(["k"], [rate], now=0.0).allowed
    refused = limiter.check(["k"], [rate], now=0.9995)  # 19.0005 s to go
    assert not refused.allowed
    seconds = int(header(refused, "Retry-After"))
    assert seconds >= refused.retry_after, f"Retry-After: {seconds} for {refused.retry_after}"
    assert limiter.check(["k"], [rate], now=0.9995 + seconds).allowed


def test_headers_of_an_answer_that_passed() -> None:
    """Edge case: remaining counts down, reset is when the limit is full again, the policy
    lists every layer."""
    limiter = LocalLimiter()
    tenant, key = Rate(10, 60.0), Rate(3, 60.0)
    first = limiter.check(["t", "k"], [tenant, key], now=0.0)
    assert (header(first, "RateLimit-Limit"), header(first, "RateLimit-Remaining")) == ("3", "2")
    assert header(first, "RateLimit-Reset") == "20"
    assert header(first, "RateLimit-Policy") == "10;w=60, 3;w=60"
    third = [limiter.check(["t", "k"], [tenant, key], now=0.0) for _ in range(2)][-1]
    assert header(third, "RateLimit-Remaining") == "0"
    assert header(third, "RateLimit-Reset") == "60"


def test_a_flood_of_new_addresses_does_not_reset_everyone_elses_count() -> None:
    """Without Redis the local limiter holds at most MAX_LOCAL_KEYS keys; when it is full of
    keys whose TAT is still ahead, it clears them all. A flood of made-up client addresses
    (IPv6 gives anyone millions) must not hand a caller that is being refused a fresh burst."""
    limiter = LocalLimiter()
    rate = Rate(1, 3600.0)
    assert limiter.check(["user:victim"], [rate], now=0.0).allowed
    assert not limiter.check(["user:victim"], [rate], now=0.0).allowed
    for index in range(MAX_LOCAL_KEYS):
        limiter.check([f"ip:2001:db8::{index:x}"], [rate], now=1.0)
    assert not limiter.check(["user:victim"], [rate], now=2.0).allowed, (
        "the flood wiped the count: the refused caller has its burst back"
    )


# -- the Redis script ---------------------------------------------------------------------------


@pytest.fixture
async def limiter(redis_prefix: str) -> AsyncIterator[Limiter]:
    link = RedisLink(REDIS_URL, redis_prefix)
    try:
        yield Limiter(link)
    finally:
        await link.close()


async def test_redis_a_refusal_reports_the_limit_that_refused(limiter: Limiter) -> None:
    tenant, key = Rate(2, 60.0), Rate(1, 60.0)
    assert (await limiter.check(["tenant", "other-key"], [tenant, key])).allowed
    assert (await limiter.check(["this-key"], [key])).allowed
    refused = await limiter.check(["tenant", "this-key"], [tenant, key])
    assert not refused.allowed
    assert refused.limit == 1, "RateLimit-Limit names the tenant's limit, which had room"
    assert refused.reset >= refused.retry_after - 0.001


async def test_redis_several_keys_are_charged_together_or_not_at_all(
    limiter: Limiter, redis_prefix: str
) -> None:
    """Edge case: the script charges every key of a passing check (each with an expiry, so
    nothing is left behind), and none of a refused one (not even creating a key)."""
    assert limiter.link is not None
    client = limiter.link.client
    loose, tight = Rate(100, 60.0), Rate(2, 60.0)
    for _ in range(2):
        assert (await limiter.check(["loose", "tight"], [loose, tight])).allowed
    refused = await limiter.check(["loose", "tight", "fresh"], [loose, tight, loose])
    assert not refused.allowed
    assert await client.exists(redis_prefix + "rl:fresh") == 0
    assert (await limiter.peek("loose", loose))[0] == 98
    for name, rate in (("loose", loose), ("tight", tight)):
        ttl = await client.pttl(redis_prefix + "rl:" + name)
        # The key lives until its TAT has passed: 2 intervals from now, give or take.
        assert 0 < ttl <= math.ceil(2 * rate.interval * 1000) + 1


async def test_redis_a_burst_of_exactly_the_limit_then_one_every_interval(
    limiter: Limiter,
) -> None:
    """Edge case at the boundary, on Redis' clock: `limit` pass, the next is refused with
    Retry-After about one interval, remaining counts down to 0."""
    rate = Rate(7, 60.0)
    verdicts = [await limiter.check(["burst"], [rate]) for _ in range(8)]
    assert [v.allowed for v in verdicts] == [True] * 7 + [False]
    assert [v.remaining for v in verdicts[:7]] == [6, 5, 4, 3, 2, 1, 0]
    assert verdicts[7].retry_after == pytest.approx(rate.interval, abs=0.5)


async def test_redis_a_foreign_value_under_a_key_falls_back_to_local_counting(
    limiter: Limiter, redis_prefix: str
) -> None:
    """Edge case: a key holding something that is not a number (another deployment sharing
    the prefix by mistake) is refused by the script as an error; the limiter falls back to
    counting locally rather than failing the request."""
    assert limiter.link is not None
    await limiter.link.client.set(redis_prefix + "rl:odd", "not a number")
    verdict = await limiter.check(["odd"], [Rate(5, 60.0)])
    assert verdict.allowed


# -- the auth core's default endpoint limits --------------------------------------------------


async def test_login_is_limited_per_address_by_default(tmp_path: Path, redis_prefix: str) -> None:
    """Edge case: 30 logins a minute from one address pass, the 31st is 429 with Retry-After
    and RateLimit-*; another address is not affected. Counted in Redis."""
    core = AuthCore(support.auth_settings(tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix))
    await core.start(follow=False)
    try:
        api: AuthApi = build_api(core)
        await core.accounts.create("ada@example.com", PASSWORD, verified=True)
        body = b'{"email": "ada@example.com", "password": "' + PASSWORD.encode() + b'"}'

        def call(ip: str) -> ApiCall:
            return ApiCall(
                method="POST",
                path="/api/v1/auth/login",
                query={},
                header=lambda name: None,
                body=body,
                info=CallInfo(ip=ip),
                base_url="",
            )

        for _ in range(LOGIN_RATE.limit):
            assert (await api.dispatch(call("192.0.2.1"))).status == 200
        with pytest.raises(RateLimited) as caught:
            await api.dispatch(call("192.0.2.1"))
        limited = caught.value.headers
        assert limited["RateLimit-Limit"] == "30"
        assert limited["RateLimit-Policy"] == "30;w=60"
        assert 1 <= int(limited["Retry-After"]) <= 2
        assert (await api.dispatch(call("192.0.2.2"))).status == 200
        client = aioredis.from_url(REDIS_URL)
        try:
            names = [key async for key in client.scan_iter(match=redis_prefix + "rl:api:*")]
        finally:
            await client.aclose()
        assert len(names) == 2  # one an address, each with an expiry (checked by the script)
    finally:
        await core.close()
