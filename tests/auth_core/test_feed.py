"""Revocations reach every worker: pushed through Redis pub/sub, polled from the table without
it (the embedded mode, or while Redis is away), and caught up after a broken subscription.

Two AuthCores on one database stand for two workers (or replicas). No test times anything:
a push is shown by making the poll that would otherwise find the revocation an hour long.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from auth_core.errors import TokenRevoked
from auth_core.service import AuthCore, CallInfo
from auth_core.sessions import TokenPair
from tests import support
from tests.auth_core.helpers import PASSWORD, two_cores
from tests.conftest import REDIS_URL
from tests.support import eventually

CALL = CallInfo(ip="203.0.113.5", request_id="req-feed")
HOUR = 3600.0


async def logged_in(core: AuthCore) -> TokenPair:
    await core.accounts.create("ada@example.com", PASSWORD, verified=True)
    return await core.sessions.login("ada@example.com", PASSWORD, CALL)


def refuses(core: AuthCore, token: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            core.authenticate_access_token(token)
        except TokenRevoked:
            return True
        return False

    return check


async def subscribed(core: AuthCore) -> None:
    await eventually(lambda: core.feed.subscribed, "subscribed")


async def test_without_redis_every_worker_polls_the_table(
    tmp_path: Path, database_url: str
) -> None:
    async with two_cores(tmp_path, database_url) as (first, second):
        assert first.redis is None
        pair = await logged_in(first)
        second.authenticate_access_token(pair.access_token)
        await first.sessions.logout(first.authenticate_access_token(pair.access_token), CALL)
        assert refuses(first, pair.access_token)()
        await eventually(refuses(second, pair.access_token), "the revocation arrived")


async def test_with_redis_a_revocation_is_pushed(
    tmp_path: Path, database_url: str, redis_prefix: str
) -> None:
    async with two_cores(
        tmp_path, database_url, redis_url=REDIS_URL, redis_prefix=redis_prefix
    ) as (first, second):
        await subscribed(first)
        await subscribed(second)
        # Only a push can now reach the second core within the test's patience.
        second.feed.safety_interval = HOUR
        second.feed.wake.set()  # let it pick up the new interval
        pair = await logged_in(first)
        second.authenticate_access_token(pair.access_token)
        await first.sessions.logout(first.authenticate_access_token(pair.access_token), CALL)
        await eventually(refuses(second, pair.access_token), "the revocation arrived")


async def test_redis_of_another_prefix_does_not_wake_us(
    tmp_path: Path, database_url: str, redis_prefix: str
) -> None:
    async with two_cores(
        tmp_path, database_url, redis_url=REDIS_URL, redis_prefix=redis_prefix + "other:"
    ) as (first, _):
        listener = AuthCore(
            support.auth_settings(
                tmp_path, database_url=database_url, redis_url=REDIS_URL, redis_prefix=redis_prefix
            )
        )
        await listener.start()
        try:
            await subscribed(first)
            await subscribed(listener)
            heard = listener.feed.received
            await first.feed.announce(1)  # another deployment's channel
            await listener.feed.announce(2)  # its own
            # Redis delivers in the order it took the two: once ours is heard, the other
            # one would have been too.
            await eventually(lambda: listener.feed.received > heard, "the announcement arrived")
            assert listener.feed.received == heard + 1
        finally:
            await listener.close()


async def test_an_announcement_redis_could_not_take_is_made_when_it_can(
    tmp_path: Path, database_url: str
) -> None:
    # The revoking worker's link has just failed (as after a Redis restart, when every pooled
    # connection is stale): the announcement is owed, not lost, while the others stay
    # subscribed and would read the table only at their (here hour-long) safety poll.
    async with two_cores(tmp_path, database_url, redis_url=REDIS_URL, redis_prefix="owed:") as (
        first,
        second,
    ):
        await subscribed(second)
        await subscribed(first)
        second.feed.safety_interval = HOUR
        # Wake the follower so that its next wait is the hour, not the interval it was in.
        second.feed.wake.set()
        await eventually(lambda: not second.feed.wake.is_set(), "the follower woke")
        pair = await logged_in(first)
        second.authenticate_access_token(pair.access_token)
        assert first.feed.link is not None
        first.feed.link.failed(ConnectionError("a stale pooled connection"))
        await first.sessions.logout(first.authenticate_access_token(pair.access_token), CALL)
        assert refuses(first, pair.access_token)()
        await eventually(refuses(second, pair.access_token), "the owed announcement arrived")
        assert second.feed.received == 1


async def test_losing_redis_falls_back_to_polling_and_catches_up(
    tmp_path: Path, database_url: str
) -> None:
    with support.redis_server(tmp_path) as server:
        async with two_cores(tmp_path, database_url, redis_url=server.url, redis_prefix="t:") as (
            first,
            second,
        ):
            await subscribed(second)
            second.feed.safety_interval = HOUR
            pair = await logged_in(first)
            other = await first.sessions.login("ada@example.com", PASSWORD, CALL)
            server.stop()
            await eventually(lambda: not second.feed.subscribed, "unsubscribed")
            # Redis is gone: the revoking worker cannot announce, the others poll the table.
            await first.sessions.logout(first.authenticate_access_token(pair.access_token), CALL)
            await eventually(refuses(second, pair.access_token), "the revocation arrived")
            assert first.redis is not None
            assert not first.redis.healthy
            # Back: the subscription returns by itself, and pushes work again.
            server.start()
            await subscribed(second)
            await subscribed(first)
            await first.sessions.logout(first.authenticate_access_token(other.access_token), CALL)
            await eventually(refuses(second, other.access_token), "the revocation arrived")
            await eventually(
                lambda: first.redis is not None and first.redis.healthy, "Redis healthy"
            )
