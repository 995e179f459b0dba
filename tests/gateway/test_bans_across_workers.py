"""Bans across workers and replicas: failures counted (locally and in Redis, also when Redis
goes away in the middle), bans and lifts through the revocation table (out of order, expired,
seen by a worker that starts later or revokes something itself), the admin's list against
what is enforced, and the 429 of a banned address at the gateway until its ban ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import ClientSession, TCPConnector

from auth_core.revocation import BAN, UNBAN, RevocationSet
from auth_core.service import AuthCore, CallInfo
from auth_core.store.revocations import RevocationTable
from tests import support
from tests.auth_core.helpers import sync
from tests.conftest import REDIS_URL
from tests.support import (
    Upstream,
    auth_settings,
    eventually,
    quiet_settings,
    routes,
    running_gateway,
    two_connections,
)

BAN_AFTER = 30  # failed credentials (the default GATEWAY_BAN_THRESHOLD) ...
BAN_WINDOW = 600  # ... within this many seconds (the default GATEWAY_BAN_WINDOW)
CALL = CallInfo(ip="198.51.100.9", request_id="req-bans")
ATTACKER = "198.51.100.66"
OTHER = "198.51.100.77"


@asynccontextmanager
async def workers(
    tmp_path: Path, database_url: str, count: int = 2, **options: object
) -> AsyncIterator[list[AuthCore]]:
    """Auth cores on one database that read the revocation table only when told to."""
    settings = support.auth_settings(tmp_path, database_url=database_url, **options)
    cores = [AuthCore(settings) for _ in range(count)]
    started: list[AuthCore] = []
    try:
        for core in cores:
            await core.start(follow=False)
            started.append(core)
        yield cores
    finally:
        for core in started:
            await core.close()


async def settle(core: AuthCore) -> None:
    await core.background_work.drain()


async def fail(core: AuthCore, address: str, times: int) -> None:
    for _ in range(times):
        core.bans.failed(address, "invalid_api_key", CALL)
        await settle(core)


async def insert(core: AuthCore, kind: str, value: str, at: float, expires_at: float) -> None:
    """A row as another replica writes it (its own clock for `at`)."""
    await core.store.db.execute(
        "INSERT INTO revocations (kind, value, at, expires_at) VALUES ($1, $2, $3, $4)",
        kind,
        value,
        at,
        expires_at,
    )


# -- through the revocation table ---------------------------------------------------------------


async def test_a_ban_reaches_a_worker_that_bans_another_address_before_reading_it(
    tmp_path: Path, database_url: str
) -> None:
    """Worker A bans one address; worker B bans another before its next read of the table
    (its own ban is applied at once). B must still learn of A's ban."""
    async with workers(tmp_path, database_url) as (first, second):
        await sync(second)
        await first.bans.ban(ATTACKER, "repeated failed credentials", CALL)
        await second.bans.ban(OTHER, "repeated failed credentials", CALL)
        await sync(second)
        await sync(second)
        assert second.bans.banned_for(OTHER) > 0
        assert second.bans.banned_for(ATTACKER) > 0, "worker B never read A's ban"


async def test_an_unban_read_before_its_ban_keeps_the_address_free(postgres_url: str) -> None:
    """Edge case (PostgreSQL: ids commit out of order): a ban's row (id n) commits after the
    lift (id n+1) that followed it; a worker reading between the two commits sees the lift
    first. The ban, older than the lift, must stay lifted when it arrives."""
    async with two_connections(postgres_url) as (slow, fast):
        revoked = RevocationSet()
        until = time.time() + 900
        async with slow.transaction() as transaction:
            ban = await RevocationTable(transaction).add(BAN, ATTACKER, until)
            lift = await RevocationTable(fast).add(UNBAN, ATTACKER, until + 86400)
            assert ban.id < lift.id
            assert ban.at < lift.at
            await revoked.sync(RevocationTable(fast))
            assert revoked.banned_for(ATTACKER, time.time()) == 0
        await revoked.sync(RevocationTable(fast))
        assert revoked.last_id == lift.id
        assert revoked.banned_for(ATTACKER, time.time()) == 0
        # A ban made after the lift bans again.
        await RevocationTable(fast).add(BAN, ATTACKER, time.time() + 900)
        await revoked.sync(RevocationTable(fast))
        assert revoked.banned_for(ATTACKER, time.time()) > 0


async def test_the_ban_list_agrees_with_what_is_enforced(tmp_path: Path, database_url: str) -> None:
    """Rows in id order: a ban, its lift, then a second ban whose `at` precedes the lift (the
    second of two replicas that both counted the address over the limit, committed late or
    with a clock a little behind). The revocation set orders by `at`: the address is free.
    GET /api/v1/bans must not list it as banned (and DELETE then answer 404 for it)."""
    async with workers(tmp_path, database_url, 1) as (core,):
        now = time.time()
        await insert(core, BAN, ATTACKER, now - 10.0, now + 890.0)
        await insert(core, UNBAN, ATTACKER, now - 5.0, now + 86400.0)
        await insert(core, BAN, ATTACKER, now - 8.0, now + 892.0)
        await sync(core)
        assert core.bans.banned_for(ATTACKER) == 0
        listed = [ban["address"] for ban in await core.bans.active()]
        assert listed == [], "listed as banned, but not refused (and cannot be lifted)"


async def test_a_lift_through_a_worker_that_has_not_read_the_ban_yet(
    tmp_path: Path, database_url: str
) -> None:
    """The admin lists the bans (read from the table, so every replica's are there) and lifts
    one through a worker that has not read that ban yet: the lift must not answer 'not
    banned' (404) for a ban the same worker has just listed."""
    async with workers(tmp_path, database_url) as (first, second):
        await first.bans.ban(ATTACKER, "repeated failed credentials", CALL)
        assert [ban["address"] for ban in await second.bans.active()] == [ATTACKER]
        assert await second.bans.lift(ATTACKER, None, CALL), "lift refused: 'not banned'"


async def test_a_worker_started_after_a_ban_refuses_and_one_started_after_the_lift_does_not(
    tmp_path: Path, database_url: str
) -> None:
    """Edge case: the table is the catch-up for a worker that was not running."""
    async with workers(tmp_path, database_url, 1) as (core,):
        await core.bans.ban(ATTACKER, "test", CALL)
        async with workers(tmp_path, database_url, 1) as (late,):
            assert 0 < late.bans.banned_for(ATTACKER) <= 900
            assert late.bans.banned_for(OTHER) == 0
        assert await core.bans.lift(ATTACKER, None, CALL)
        async with workers(tmp_path, database_url, 1) as (later,):
            assert later.bans.banned_for(ATTACKER) == 0
            assert await later.bans.active() == []


async def test_an_expired_ban_lets_the_address_in_and_counting_starts_over(
    tmp_path: Path, database_url: str
) -> None:
    """Edge case: a ban ends by itself; the failures before it do not count any more, and
    BAN_AFTER new ones ban the address again."""
    async with workers(tmp_path, database_url, 1) as (core,):
        await fail(core, ATTACKER, BAN_AFTER)
        assert core.bans.banned_for(ATTACKER) > 0
        # Banned: more failures are not even counted.
        await fail(core, ATTACKER, 5)
        assert core.bans.failures.count(ATTACKER) == 0
        # A short ban written the same way, standing for the end of the long one.
        await core.bans.lift(ATTACKER, None, CALL)
        await asyncio.sleep(0.01)  # `at` of the next ban is after the lift's
        await core.bans.ban(ATTACKER, "test", CALL, seconds=0.3)
        assert core.bans.banned_for(ATTACKER) > 0
        await eventually(lambda: core.bans.banned_for(ATTACKER) == 0, "the ban ended")
        assert await core.bans.active() == []
        await fail(core, ATTACKER, BAN_AFTER - 1)
        assert core.bans.banned_for(ATTACKER) == 0
        await fail(core, ATTACKER, 1)
        assert core.bans.banned_for(ATTACKER) > 0
        # The table's rows of the ended ban do not come back on a fresh read.
        async with workers(tmp_path, database_url, 1) as (late,):
            assert late.bans.banned_for(ATTACKER) > 0


# -- counting in Redis --------------------------------------------------------------------------


async def test_the_shared_counter_expires_and_is_cleared_by_the_ban(
    tmp_path: Path, database_url: str, redis_prefix: str
) -> None:
    """Edge case: the counter of an address lives at most the window, and the ban deletes it
    (no counter is left to ban the address again at its first failure after a lift)."""
    async with workers(tmp_path, database_url, redis_url=REDIS_URL, redis_prefix=redis_prefix) as (
        first,
        second,
    ):
        client = aioredis.from_url(REDIS_URL)
        try:
            await fail(first, OTHER, 3)
            ttl = await client.ttl(redis_prefix + "fails:" + OTHER)
            assert 0 < ttl <= BAN_WINDOW
            for index in range(BAN_AFTER):
                await fail(first if index % 2 == 0 else second, ATTACKER, 1)
            assert first.bans.banned_for(ATTACKER) > 0 or second.bans.banned_for(ATTACKER) > 0
            assert await client.exists(redis_prefix + "fails:" + ATTACKER) == 0
        finally:
            await client.aclose()


async def test_counting_goes_on_locally_when_redis_goes_away_in_the_middle(
    tmp_path: Path,
) -> None:
    """Edge case: two thirds of the failures counted in Redis, then Redis is gone: the
    worker's own count (which saw every failure) bans the address at the limit."""
    with support.redis_server(tmp_path) as server:
        async with workers(tmp_path, f"sqlite:///{tmp_path}/gw.db", 1, redis_url=server.url) as (
            core,
        ):
            await fail(core, ATTACKER, 20)
            client = aioredis.from_url(server.url)
            try:
                assert int(await client.get("gateway:fails:" + ATTACKER) or 0) == 20
            finally:
                await client.aclose()
            server.stop()
            await fail(core, ATTACKER, BAN_AFTER - 21)
            assert core.bans.banned_for(ATTACKER) == 0
            await fail(core, ATTACKER, 1)
            assert core.redis is not None
            assert not core.redis.healthy
            assert core.bans.banned_for(ATTACKER) > 0


# -- the gateway's stage --------------------------------------------------------------------------


async def test_the_gateway_refuses_a_banned_address_until_the_ban_ends(
    tmp_path: Path, upstream: Upstream
) -> None:
    """Edge case: 429 rate_limited with Retry-After (whole seconds, at least 1, no more than
    the ban has left) on every route, others unaffected; 200 again once the ban ended."""
    table = routes(
        {"echo": [upstream.url]}, "{name: open, path: /open, upstream: echo, auth: none}"
    )
    settings = quiet_settings(auth=auth_settings(tmp_path))
    async with (
        running_gateway(table, tmp_path, settings) as gw,
        ClientSession(connector=TCPConnector(local_addr=("127.0.0.2", 0))) as banned,
        ClientSession() as others,
    ):
        core = gw.core
        await core.bans.ban("127.0.0.2", "test", CALL, seconds=1.5)
        async with banned.get(f"{gw.url}/open") as response:
            assert response.status == 429
            assert 1 <= int(response.headers["Retry-After"]) <= 2
            assert (await response.json())["error"] == "rate_limited"
        async with banned.get(f"{gw.url}/nowhere") as response:
            assert response.status == 429  # before routing: on every path
        async with others.get(f"{gw.url}/open") as response:
            assert response.status == 200
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            async with banned.get(f"{gw.url}/open") as response:
                if response.status == 200:
                    break
            assert loop.time() < deadline, "the ban never ended"
            await asyncio.sleep(0.05)
