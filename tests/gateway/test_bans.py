"""Bans: an address that keeps presenting wrong credentials is banned (429 with Retry-After,
on every route, in every gateway sharing the database), listed and lifted by an admin, and
audited; expired or missing credentials do not count. Failures counted through Redis add up
across gateways."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import ClientSession, TCPConnector

from auth_core.service import AuthCore, CallInfo
from tests.conftest import REDIS_URL
from tests.support import (
    Upstream,
    auth_settings,
    quiet_settings,
    routes,
    running_gateway,
    two_gateways,
)

BAN_AFTER = 30  # failed credentials: the default GATEWAY_BAN_THRESHOLD
CALL = CallInfo()
PASSWORD = "correct horse battery"
ATTACKER = "127.0.0.2"
ROUTES = (
    "{name: partner, path: /partner, upstream: echo, auth: api_key}",
    "{name: open, path: /open, upstream: echo, auth: none}",
    "{name: private, path: /private, upstream: echo, auth: jwt}",
    "{name: bans, path: /api/v1/bans, upstream: auth_core, auth: jwt, roles: [admin]}",
    "{name: audit, path: /api/v1/audit, upstream: auth_core, auth: jwt, roles: [admin]}",
)
UNKNOWN_KEY = "gwk_" + "A" * 38  # malformed (bad checksum): refused without a look-up


@asynccontextmanager
async def attacker() -> AsyncIterator[ClientSession]:
    async with ClientSession(connector=TCPConnector(local_addr=(ATTACKER, 0))) as session:
        yield session


async def admin_headers(core: AuthCore) -> dict[str, str]:
    await core.accounts.create("admin@example.com", PASSWORD, roles=("admin",), verified=True)
    pair = await core.sessions.login("admin@example.com", PASSWORD, CALL)
    return {"Authorization": f"Bearer {pair.access_token}"}


async def status(client: ClientSession, url: str, **kwargs: object) -> int:
    async with client.get(url, **kwargs) as response:  # type: ignore[arg-type]
        await response.read()
        return response.status


async def until_status(client: ClientSession, url: str, wanted: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while await status(client, url) != wanted:
        assert loop.time() < deadline, f"never {wanted}"
        await asyncio.sleep(0.02)


async def test_repeated_bad_keys_ban_the_address_everywhere_until_lifted(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    table = routes({"echo": [upstream.url]}, *ROUTES)
    settings = quiet_settings(auth=auth_settings(tmp_path))
    async with (
        two_gateways(table, tmp_path, settings) as (first, second),
        attacker() as bad,
    ):
        admin = await admin_headers(first.core)
        for _ in range(BAN_AFTER):
            assert (
                await status(bad, f"{first.url}/partner", headers={"X-API-Key": UNKNOWN_KEY}) == 401
            )
        # Banned (once the ban is written, off the refusal's path): on every route of this
        # gateway, and, once it reads the table, of the other one.
        await until_status(bad, f"{first.url}/open", 429)
        async with bad.get(f"{first.url}/open") as response:
            assert response.status == 429
            assert int(response.headers["Retry-After"]) > 60
            assert (await response.json())["error"] == "rate_limited"
        await until_status(bad, f"{second.url}/open", 429)
        # Others are not.
        assert await status(client, f"{first.url}/open") == 200
        # Counted as banned, not under a route (nor under none).
        async with client.get(f"{second.url}/metrics") as response:
            text = await response.text()
        assert re.search(
            r'^gateway_requests_total\{method="GET",route="@banned",status="429"\} [1-9]',
            text,
            re.MULTILINE,
        )
        assert 'route=""' not in text
        async with client.get(f"{first.url}/api/v1/bans", headers=admin) as response:
            bans = (await response.json())["bans"]
        assert [ban["address"] for ban in bans] == [ATTACKER]
        async with client.get(f"{first.url}/api/v1/audit?event=ip_ban", headers=admin) as response:
            entries = (await response.json())["entries"]
        assert [(e["outcome"], e["detail"]["address"]) for e in entries] == [("banned", ATTACKER)]

        async with client.delete(f"{second.url}/api/v1/bans/{ATTACKER}", headers=admin) as response:
            assert response.status == 204
        await until_status(bad, f"{first.url}/open", 200)
        assert await status(bad, f"{second.url}/open") == 200
        async with client.delete(f"{first.url}/api/v1/bans/{ATTACKER}", headers=admin) as response:
            assert response.status == 404
        async with client.get(f"{first.url}/api/v1/bans", headers=admin) as response:
            assert (await response.json())["bans"] == []


async def test_missing_credentials_do_not_count(tmp_path: Path, upstream: Upstream) -> None:
    async with (
        running_gateway(routes({"echo": [upstream.url]}, *ROUTES), tmp_path) as gw,
        attacker() as bad,
    ):
        for _ in range(BAN_AFTER + 5):
            assert await status(bad, f"{gw.url}/private") == 401  # no token at all
        assert await status(bad, f"{gw.url}/open") == 200


async def test_failures_counted_in_redis_add_up_across_gateways(
    tmp_path: Path, upstream: Upstream, redis_prefix: str
) -> None:
    table = routes({"echo": [upstream.url]}, *ROUTES)
    settings = quiet_settings(
        auth=auth_settings(tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix),
    )
    async with (
        two_gateways(table, tmp_path, settings) as (first, second),
        attacker() as bad,
    ):
        bearer = {"Authorization": "Bearer not-a-token"}
        for index in range(BAN_AFTER):
            gw = first if index % 2 == 0 else second
            assert await status(bad, f"{gw.url}/private", headers=bearer) == 401
        # Half of the failures reached each gateway: only the shared count can ban.
        await until_status(bad, f"{first.url}/open", 429)
        await until_status(bad, f"{second.url}/open", 429)
