"""Losing the database (docs/limits.md): PostgreSQL behind a relay the test cuts.
Cached credentials keep working for the stale window, everything that needs the database answers 503
auth_unavailable, /ready names the database, and all of it recovers by itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import ClientSession

from auth_core.service import CallInfo
from tests.support import TcpRelay, Upstream, auth_settings, quiet_settings, routes, running_gateway

CALL = CallInfo()
PASSWORD = "correct horse battery"
TTL = 0.3  # the credential cache's lifetime here: past it, the database is asked again
ROUTES = (
    "{name: partner, path: /partner, upstream: echo, auth: api_key}",
    "{name: private, path: /private, upstream: echo, auth: jwt}",
    "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
)


async def status(client: ClientSession, method: str, url: str, **kwargs: object) -> int:
    async with client.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
        await response.read()
        return response.status


@pytest.mark.parametrize("stale_window", [60.0, 0.0], ids=["stale-window", "no-stale-window"])
async def test_cached_credentials_outlive_the_database_for_the_stale_window(
    tmp_path: Path,
    upstream: Upstream,
    client: ClientSession,
    postgres_relay: tuple[TcpRelay, str],
    stale_window: float,
) -> None:
    cut, database_url = postgres_relay
    settings = quiet_settings(
        auth=auth_settings(
            tmp_path, database_url=database_url, cache_ttl=TTL, stale_window=stale_window
        ),
    )
    async with running_gateway(routes({"echo": [upstream.url]}, *ROUTES), tmp_path, settings) as gw:
        core = gw.core
        tenant = await core.tenants.create("Acme", [], ["127.0.0.0/8"], None, CALL)
        _, key = await core.keys.create(tenant.id, actor_id=None, call=CALL)
        await core.accounts.create("ada@example.com", PASSWORD, verified=True)
        token = (await core.sessions.login("ada@example.com", PASSWORD, CALL)).access_token
        with_key = {"headers": {"X-API-Key": key}}
        with_token = {"headers": {"Authorization": f"Bearer {token}"}}
        assert await status(client, "GET", f"{gw.url}/partner", **with_key) == 200
        assert await status(client, "GET", f"{gw.url}/private", **with_token) == 200

        await cut.cut()
        await asyncio.sleep(TTL * 2)  # the cached key is now past its lifetime
        expected = 200 if stale_window else 503
        assert await status(client, "GET", f"{gw.url}/partner", **with_key) == expected
        # An access token needs no database at all.
        assert await status(client, "GET", f"{gw.url}/private", **with_token) == 200
        login = {"json": {"email": "ada@example.com", "password": PASSWORD}}
        assert await status(client, "POST", f"{gw.url}/api/v1/auth/login", **login) == 503
        async with client.get(f"{gw.url}/ready") as response:
            document = await response.json()
        # Within the stale window the replica still serves (cached credentials, tokens): a
        # readiness probe must keep it; without a window there is nothing to serve from.
        assert (response.status, document["status"]) == (
            (200, "degraded") if stale_window else (503, "unavailable")
        )
        assert document["down"] == ["database"]
        assert document["checks"]["database"] == ("stale" if stale_window else "unreachable")

        await cut.restore()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while await status(client, "POST", f"{gw.url}/api/v1/auth/login", **login) != 200:
            assert loop.time() < deadline, "the gateway never got its database back"
            await asyncio.sleep(0.1)
        assert await status(client, "GET", f"{gw.url}/partner", **with_key) == 200
        async with client.get(f"{gw.url}/ready") as response:
            assert response.status == 200
