"""The per-address failure window, driven with explicit clocks (no sleeping)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from auth_core.redis_link import RedisLink
from auth_core.throttle import FailureWindow, LoginThrottle, account_subject, delay_after
from tests.conftest import REDIS_URL


@pytest.mark.parametrize(
    ("failures", "now", "wait"),
    [
        pytest.param([], 0.0, 0.0, id="none"),
        pytest.param([0.0, 1.0], 2.0, 0.0, id="below-limit"),
        pytest.param([0.0, 1.0, 2.0], 2.0, 58.0, id="at-limit"),
        pytest.param([0.0, 1.0, 2.0], 30.0, 30.0, id="waiting"),
        pytest.param([0.0, 1.0, 2.0], 60.5, 0.0, id="oldest-slid-out"),
        pytest.param([0.0, 1.0, 2.0, 3.0, 4.0], 4.0, 58.0, id="over-limit-keeps-the-last"),
        pytest.param([0.0, 1.0, 2.0], 1000.0, 0.0, id="all-slid-out"),
    ],
)
def test_blocked(failures: list[float], now: float, wait: float) -> None:
    window = FailureWindow(limit=3, window=60.0)
    for at in failures:
        window.fail("198.51.100.1", now=at)
    assert window.blocked("198.51.100.1", now=now) == pytest.approx(wait)
    assert window.blocked("198.51.100.2", now=now) == 0.0


def test_forget_lifts_the_block() -> None:
    window = FailureWindow(limit=2, window=60.0)
    window.fail("a", now=0.0)
    window.fail("a", now=0.0)
    assert window.blocked("a", now=1.0) > 0
    window.forget("a")
    window.forget("never-seen")
    assert window.blocked("a", now=1.0) == 0.0


def test_keys_are_bounded() -> None:
    window = FailureWindow(limit=1, window=60.0, max_keys=3)
    for number in range(10):
        window.fail(f"k{number}", now=0.0)
    assert len(window._failures) <= 3
    assert window.blocked("k9", now=0.0) > 0


# -- failed logins per (account, address) pair, and per account ---------------------------------


def test_a_pair_waits_one_second_after_five_failures_then_twice_as_long_each_time() -> None:
    delays = [delay_after(failures) for failures in range(1, 12)]
    assert delays == [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    assert delay_after(15) == 900.0  # capped at a quarter of an hour
    assert delay_after(10_000) == 900.0


def test_accounts_are_counted_by_the_address_typed_without_keeping_it() -> None:
    subject = account_subject(" Ada@Example.com ")
    assert subject == account_subject("ada@example.com")
    assert "ada" not in subject
    assert subject != account_subject("bob@example.com")


@pytest.fixture(params=["in-process", "redis"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for in-process counting, else a Redis key prefix of this test's own."""
    if request.param == "in-process":
        return None
    return str(request.getfixturevalue("redis_prefix"))


@pytest.fixture
async def throttles(backend: str | None) -> AsyncIterator[tuple[LoginThrottle, LoginThrottle]]:
    """Two workers' throttles: in-process (each its own; the tests use the first), or on one
    Redis prefix (they count together)."""
    if backend is None:
        yield LoginThrottle(None), LoginThrottle(None)
        return
    links = [RedisLink(REDIS_URL, backend), RedisLink(REDIS_URL, backend)]
    try:
        yield LoginThrottle(links[0]), LoginThrottle(links[1])
        # Counted in Redis indeed, not in the fallback a failing Redis would leave.
        assert [link.failures for link in links] == [0, 0]
        assert [key async for key in links[0].client.scan_iter(match=backend + "login:*")]
    finally:
        for link in links:
            await link.close()


ADA = account_subject("ada@example.com")
BOB = account_subject("bob@example.com")
HOME, ATTACKER = "203.0.113.5", "198.51.100.66"


async def test_failures_hold_the_pair_not_the_account_elsewhere(
    throttles: tuple[LoginThrottle, LoginThrottle],
) -> None:
    throttle, _ = throttles
    delays = [await throttle.failed(ADA, ATTACKER) for _ in range(7)]
    assert delays == [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 4.0]
    hold = await throttle.held(ADA, ATTACKER)
    assert hold is not None
    assert hold.scope == "pair"
    assert 3.0 < hold.seconds <= 4.0
    assert await throttle.held(ADA, HOME) is None  # the owner, from home
    assert await throttle.held(BOB, ATTACKER) is None  # another account


async def test_a_success_starts_the_pair_again(
    throttles: tuple[LoginThrottle, LoginThrottle],
) -> None:
    throttle, _ = throttles
    for _ in range(5):
        await throttle.failed(ADA, HOME)
    assert await throttle.held(ADA, HOME) is not None
    await throttle.succeeded(ADA, HOME)
    assert await throttle.held(ADA, HOME) is None
    assert await throttle.failed(ADA, HOME) == 0.0  # counted from one again


async def test_the_account_wide_limit_is_a_hundred_failures_from_anywhere(
    throttles: tuple[LoginThrottle, LoginThrottle],
) -> None:
    throttle, _ = throttles
    for number in range(99):
        await throttle.failed(ADA, f"198.51.{number // 250}.{number % 250}")
    assert await throttle.held(ADA, HOME) is None
    await throttle.failed(ADA, "192.0.2.1")
    hold = await throttle.held(ADA, HOME)
    assert hold is not None
    assert hold.scope == "account"
    assert 800.0 < hold.seconds <= 900.0
    assert await throttle.held(BOB, HOME) is None
    # A password reset lifts it.
    await throttle.forget_account(ADA, HOME)
    assert await throttle.held(ADA, HOME) is None


async def test_with_redis_every_worker_sees_the_same_counts(redis_prefix: str) -> None:
    links = [RedisLink(REDIS_URL, redis_prefix), RedisLink(REDIS_URL, redis_prefix)]
    first, second = LoginThrottle(links[0]), LoginThrottle(links[1])
    try:
        for throttle in (first, second, first, second):
            await throttle.failed(ADA, ATTACKER)
        assert await second.failed(ADA, ATTACKER) == 1.0  # the fifth, across two workers
        hold = await first.held(ADA, ATTACKER)
        assert hold is not None
        assert hold.scope == "pair"
        assert [link.failures for link in links] == [0, 0]
    finally:
        for link in links:
            await link.close()
