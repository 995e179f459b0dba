"""GCRA rate limits: the arithmetic on a clock the test holds, layered limits that charge
nothing when one refuses, and the Redis limiter shared by two "replicas" (their own prefix on
the shared server), falling back to local counting while Redis is away."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from auth_core.limits import Limiter, LocalLimiter, Rate
from auth_core.redis_link import RETRY_AFTER, RedisLink
from tests import support
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
