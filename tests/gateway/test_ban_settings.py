"""Bans as configured (GATEWAY_BAN_THRESHOLD, _WINDOW, _DURATION), in process and with Redis:
the threshold and duration in force, `0` turning banning off, the 429 saying when the ban
ends, and the operational endpoints answering a banned address."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, TCPConnector

from auth_core.service import AuthCore
from tests.conftest import REDIS_URL
from tests.support import (
    RunningGateway,
    Upstream,
    auth_settings,
    quiet_settings,
    routes,
    running_gateway,
)

ATTACKER = "127.0.0.2"
BYSTANDER = "127.0.0.3"
ROUTES = (
    "{name: partner, path: /partner, upstream: echo, auth: api_key}",
    "{name: open, path: /open, upstream: echo, auth: none}",
)
UNKNOWN_KEY = "gwk_" + "A" * 38  # malformed (bad checksum): refused without a look-up
BAD_KEY = {"X-API-Key": UNKNOWN_KEY}


@pytest.fixture(params=["in-process", "redis"])
def shared(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Auth settings for failures counted in the worker, or in Redis."""
    if request.param == "in-process":
        return {}
    return {"redis_url": REDIS_URL, "redis_prefix": request.getfixturevalue("redis_prefix")}


@asynccontextmanager
async def gateway(
    tmp_path: Path, upstream: Upstream, **auth: Any
) -> AsyncIterator[tuple[RunningGateway, ClientSession, AuthCore]]:
    settings = quiet_settings(auth=auth_settings(tmp_path, **auth))
    async with (
        running_gateway(routes({"echo": [upstream.url]}, *ROUTES), tmp_path, settings) as gw,
        ClientSession(connector=TCPConnector(local_addr=(ATTACKER, 0))) as bad,
    ):
        core = gw.core
        yield gw, bad, core


async def status(client: ClientSession, url: str, **kwargs: Any) -> int:
    async with client.get(url, **kwargs) as response:
        await response.read()
        return response.status


async def settle(core: AuthCore) -> None:
    """Every background task of the auth core (shared counting, writing a ban) done."""
    await core.background_work.drain()


async def test_the_configured_threshold_bans_for_the_configured_time_and_says_until_when(
    tmp_path: Path, upstream: Upstream, shared: dict[str, Any]
) -> None:
    async with gateway(
        tmp_path, upstream, ban_threshold=3, ban_window=600.0, ban_duration=120.0, **shared
    ) as (gw, bad, core):
        for _ in range(2):
            assert await status(bad, f"{gw.url}/partner", headers=BAD_KEY) == 401
        await settle(core)
        assert await status(bad, f"{gw.url}/open") == 200, "banned below the threshold"
        assert await status(bad, f"{gw.url}/partner", headers=BAD_KEY) == 401
        await settle(core)
        async with bad.get(f"{gw.url}/open") as response:
            assert response.status == 429
            body = await response.json()
            retry_after = int(response.headers["Retry-After"])
        seen = time.time()
        assert body["error"] == "rate_limited"
        assert 60 < retry_after <= 120, "not the configured 2 minutes"
        # The detail names the end of the ban (UTC, to the second), agreeing with Retry-After.
        match = re.search(r"until (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", body["detail"])
        assert match is not None, body["detail"]
        ends = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%SZ"))
        assert abs(ends - (seen + retry_after)) <= 2
        [ban] = await core.bans.active()
        assert ban["address"] == ATTACKER
        assert ban["until"] - ban["banned_at"] == pytest.approx(120.0, abs=1.0)


@pytest.mark.parametrize(
    "switched_off",
    [
        pytest.param({"ban_threshold": 0}, id="threshold"),
        pytest.param({"ban_window": 0.0}, id="window"),
        pytest.param({"ban_duration": 0.0}, id="duration"),
    ],
)
async def test_zero_turns_banning_off(
    tmp_path: Path, upstream: Upstream, shared: dict[str, Any], switched_off: dict[str, Any]
) -> None:
    options = {"ban_threshold": 3, "ban_window": 600.0, "ban_duration": 120.0, **switched_off}
    async with gateway(tmp_path, upstream, **options, **shared) as (gw, bad, core):
        for _ in range(40):
            assert await status(bad, f"{gw.url}/partner", headers=BAD_KEY) == 401
        await settle(core)
        assert await status(bad, f"{gw.url}/open") == 200
        assert await core.bans.active() == []
        assert core.bans.failures.count(ATTACKER) == 0
        if shared:
            client = aioredis.from_url(REDIS_URL)
            try:
                assert await client.exists(shared["redis_prefix"] + "fails:" + ATTACKER) == 0
            finally:
                await client.aclose()


async def test_the_shared_count_lives_for_the_configured_window(
    tmp_path: Path, upstream: Upstream, redis_prefix: str
) -> None:
    async with gateway(
        tmp_path, upstream, ban_window=300.0, redis_url=REDIS_URL, redis_prefix=redis_prefix
    ) as (gw, bad, core):
        assert await status(bad, f"{gw.url}/partner", headers=BAD_KEY) == 401
        await settle(core)
        client = aioredis.from_url(REDIS_URL)
        try:
            assert int(await client.get(redis_prefix + "fails:" + ATTACKER) or 0) == 1
            assert 0 < await client.ttl(redis_prefix + "fails:" + ATTACKER) <= 300
        finally:
            await client.aclose()


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
async def test_a_banned_address_still_gets_the_operational_endpoints(
    tmp_path: Path, upstream: Upstream, shared: dict[str, Any], path: str
) -> None:
    """A load balancer or monitor behind the banned address (NAT) must not take the gateway
    out of rotation: only the proxied and auth core's routes are refused."""
    async with gateway(tmp_path, upstream, ban_threshold=2, **shared) as (gw, bad, core):
        for _ in range(2):
            assert await status(bad, f"{gw.url}/partner", headers=BAD_KEY) == 401
        await settle(core)
        assert await status(bad, f"{gw.url}/open") == 429
        assert await status(bad, f"{gw.url}/api/v1/auth/me") == 429
        assert await status(bad, f"{gw.url}{path}") == 200
        async with ClientSession(connector=TCPConnector(local_addr=(BYSTANDER, 0))) as other:
            assert await status(other, f"{gw.url}/open") == 200
