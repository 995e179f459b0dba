"""Several workers and several replicas: a logout through one is refused by all the others
(the bound itself, 100 ms, is measured by bench/revocation.py, not here)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from aiohttp import ClientSession, TCPConnector

from tests.conftest import REDIS_URL
from tests.support import (
    RunningGateway,
    Upstream,
    auth_settings,
    quiet_settings,
    routes,
    start_gateway_process,
    two_gateways,
)

PASSWORD = "correct horse battery"
ROUTES = (
    "{name: private, path: /private, upstream: echo, auth: jwt}",
    "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
)


async def login(client: ClientSession, base: str) -> str:
    async with client.post(
        f"{base}/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    ) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["access_token"])


async def all_refuse(base: str, token: str, *, in_a_row: int = 20) -> None:
    """Wait until `in_a_row` requests on new connections (so spread over the workers by the
    kernel) are all refused."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    refused = 0
    while refused < in_a_row:
        assert loop.time() < deadline, "some worker kept accepting the revoked token"
        async with (
            ClientSession(connector=TCPConnector(force_close=True)) as fresh,
            fresh.get(f"{base}/private", headers={"Authorization": f"Bearer {token}"}) as response,
        ):
            refused = refused + 1 if response.status == 401 else 0
            if response.status == 401:
                assert json.loads(await response.read())["error"] == "token_revoked"


async def test_a_logout_reaches_every_worker_of_the_host(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    gateway = start_gateway_process(routes({"echo": [upstream.url]}, *ROUTES), tmp_path, workers=3)
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "user",
                "create",
                "--email",
                "ada@example.com",
                "--password-stdin",
            ],
            input=PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
            env={
                **os.environ,
                "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
                "GATEWAY_PASSWORD_HASH_COST": "1,8192,1",
            },
        )
        token = await login(client, gateway.url)
        async with client.post(
            f"{gateway.url}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 204
        await all_refuse(gateway.url, token)
    finally:
        gateway.stop()


async def test_a_logout_through_one_replica_is_refused_by_the_other(
    tmp_path: Path, upstream: Upstream, client: ClientSession, postgres_url: str, redis_prefix: str
) -> None:
    settings = quiet_settings(
        auth=auth_settings(
            tmp_path, database_url=postgres_url, redis_url=REDIS_URL, redis_prefix=redis_prefix
        ),
    )
    table = routes({"echo": [upstream.url]}, *ROUTES)
    async with two_gateways(table, tmp_path, settings) as (first, second):
        core = first.core
        await core.accounts.create("ada@example.com", PASSWORD, verified=True)
        token = await login(client, first.url)
        bearer = {"Authorization": f"Bearer {token}"}
        for gw in (first, second):
            async with client.get(f"{gw.url}/private", headers=bearer) as response:
                assert response.status == 200
        await until_subscribed(second)
        async with client.post(f"{first.url}/api/v1/auth/logout", headers=bearer) as response:
            assert response.status == 204
        await all_refuse(second.url, token, in_a_row=3)
        await all_refuse(first.url, token, in_a_row=3)


async def until_subscribed(gw: RunningGateway) -> None:
    core = gw.core
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not core.feed.subscribed:
        assert loop.time() < deadline
        await asyncio.sleep(0.01)
