"""Rate limits through the gateway: per client address, per user, layered tenant and key
limits, the answers' RateLimit-* headers, 429 rate_limited with Retry-After, the auth core's
default limits, and one limit counted across two gateways sharing Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientResponse, ClientSession

from auth_core.service import CallInfo
from tests.conftest import REDIS_URL
from tests.support import (
    RunningGateway,
    Upstream,
    auth_settings,
    quiet_settings,
    routes,
    running_gateway,
    two_gateways,
)

CALL = CallInfo()
PASSWORD = "correct horse battery"
RATE_ROUTES = (
    "{name: by-ip, path: /ip, upstream: echo, auth: none,"
    " rate_limit: {key: ip, limit: 3, per: 1m}}",
    "{name: by-user, path: /user, upstream: echo, auth: jwt,"
    " rate_limit: {key: user, limit: 2, per: 1m}}",
    "{name: layered, path: /layered, upstream: echo, auth: api_key, rate_limit: ["
    "{key: tenant, limit: 5, per: 1m}, {key: credential, limit: 3, per: 1m}]}",
    "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
)


def table(upstream: Upstream) -> str:
    return routes({"echo": [upstream.url]}, *RATE_ROUTES)


@pytest.fixture
async def gw(tmp_path: Path, upstream: Upstream) -> AsyncIterator[RunningGateway]:
    """The gateway with the rate-limited routes, on the echo upstream."""
    async with running_gateway(table(upstream), tmp_path) as running:
        yield running


async def assert_limited(response: ClientResponse) -> None:
    assert response.status == 429
    assert response.headers["Content-Type"] == "application/problem+json"
    assert json.loads(await response.read())["error"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["RateLimit-Remaining"] == "0"
    assert "RateLimit-Limit" in response.headers
    assert "RateLimit-Reset" in response.headers


async def statuses(client: ClientSession, url: str, count: int, **kwargs: object) -> list[int]:
    found = []
    for _ in range(count):
        async with client.get(url, **kwargs) as response:  # type: ignore[arg-type]
            found.append(response.status)
            if response.status == 429:
                await assert_limited(response)
    return found


async def test_a_limit_per_client_address(
    gw: RunningGateway, upstream: Upstream, client: ClientSession
) -> None:
    remaining = []
    for _ in range(3):
        async with client.get(f"{gw.url}/ip/x") as response:
            assert response.status == 200
            remaining.append(response.headers["RateLimit-Remaining"])
            assert response.headers["RateLimit-Limit"] == "3"
            assert response.headers["RateLimit-Policy"] == "3;w=60"
    assert remaining == ["2", "1", "0"]
    async with client.get(f"{gw.url}/ip/x") as response:
        await assert_limited(response)
    assert len(upstream.seen) == 3  # the refused request never reached the upstream
    async with client.get(f"{gw.url}/metrics") as response:
        metrics = await response.text()
    assert 'gateway_rate_limited_total{route="by-ip"} 1.0' in metrics


async def test_a_limit_per_user_counts_users_apart(
    gw: RunningGateway, client: ClientSession
) -> None:
    core = gw.core
    tokens = []
    for email in ("ada@example.com", "bob@example.com"):
        await core.accounts.create(email, PASSWORD, verified=True)
        pair = await core.sessions.login(email, PASSWORD, CALL)
        tokens.append({"Authorization": f"Bearer {pair.access_token}"})
    assert await statuses(client, f"{gw.url}/user", 3, headers=tokens[0]) == [200, 200, 429]
    assert await statuses(client, f"{gw.url}/user", 2, headers=tokens[1]) == [200, 200]


async def test_layered_tenant_and_key_limits(gw: RunningGateway, client: ClientSession) -> None:
    core = gw.core
    tenant = await core.tenants.create("Acme", [], ["127.0.0.0/8"], None, CALL)
    keys = [
        {"X-API-Key": (await core.keys.create(tenant.id, actor_id=None, call=CALL))[1]}
        for _ in range(2)
    ]
    url = f"{gw.url}/layered"
    # The key's limit (3) refuses first ...
    assert await statuses(client, url, 4, headers=keys[0]) == [200, 200, 200, 429]
    # ... and the tenant's (5) refuses the other key after the tenant's fifth request,
    # though that key used only two: the refused request above cost the tenant nothing.
    assert await statuses(client, url, 3, headers=keys[1]) == [200, 200, 429]


async def test_the_auth_core_limits_mail_sending_endpoints_by_default(
    gw: RunningGateway, client: ClientSession
) -> None:
    answers = []
    for _ in range(11):
        async with client.post(
            f"{gw.url}/api/v1/auth/forgot-password", json={"email": "x@example.com"}
        ) as response:
            answers.append(response.status)
            if response.status == 429:
                await assert_limited(response)
    assert answers == [202] * 10 + [429]


async def test_two_gateways_sharing_redis_count_one_limit(
    tmp_path: Path, upstream: Upstream, client: ClientSession, redis_prefix: str
) -> None:
    settings = quiet_settings(
        auth=auth_settings(tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix),
    )
    async with two_gateways(table(upstream), tmp_path, settings) as (first, second):
        found = []
        for index in range(4):
            gw = first if index % 2 == 0 else second
            async with client.get(f"{gw.url}/ip/x") as response:
                found.append(response.status)
        assert found == [200, 200, 200, 429]
