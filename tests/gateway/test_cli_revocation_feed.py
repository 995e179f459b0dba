"""A revocation made with the CLI reaches running gateways at once when they share Redis:
`gateway key revoke` (a process of its own, given GATEWAY_REDIS_URL) publishes on the
revocation feed as a gateway does. The gateway's safety poll is made an hour long, so only
the push can explain the refusal. Without a reachable Redis the revocation still stands and
the CLI says so in one line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import ClientSession

from auth_core.calls import CallInfo
from tests.conftest import REDIS_URL
from tests.support import (
    Upstream,
    auth_settings,
    command_environment,
    eventually,
    fetch,
    free_port,
    gateway_command,
    quiet_settings,
    routes,
    running_gateway,
)

HOUR = 3600.0
WHERE = CallInfo(ip="127.0.0.1")
ROUTE = "{name: partner, path: /partner, upstream: echo, auth: api_key, strip_prefix: true}"


async def test_a_cli_revocation_is_pushed_to_a_running_gateway(
    tmp_path: Path, upstream: Upstream, client: ClientSession, redis_prefix: str
) -> None:
    auth = auth_settings(tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix)
    table = routes({"echo": [upstream.url]}, ROUTE)
    async with running_gateway(table, tmp_path, quiet_settings(auth=auth)) as gateway:
        core = gateway.core
        await eventually(lambda: core.feed.subscribed, "the gateway subscribed")
        core.feed.safety_interval = HOUR
        core.feed.wake.set()  # its next wait is the hour
        await eventually(lambda: not core.feed.wake.is_set(), "the follower woke")
        tenant = await core.tenants.create("acme", [], ["127.0.0.0/8"], None, WHERE)
        key, secret = await core.keys.create(tenant.id, name="k", actor_id=None, call=WHERE)
        url = gateway.url + "/partner/x"
        answer = await fetch(client, "GET", url, headers={"X-API-Key": secret})
        assert answer.status == 200  # validated, and now cached by the gateway
        read, heard = core.revoked.last_id, core.feed.received
        environment = command_environment(
            tmp_path, GATEWAY_REDIS_URL=REDIS_URL, GATEWAY_REDIS_PREFIX=redis_prefix
        )
        done = await asyncio.to_thread(
            gateway_command, tmp_path, environment, "key", "revoke", key.id
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"revoked key {key.id}"
        assert done.stderr == ""

        # The push wakes the gateway, which reads the table at once; an hour otherwise.
        await eventually(lambda: core.revoked.last_id > read, "the gateway read the revocation")
        assert core.feed.received > heard
        again = await fetch(client, "GET", url, headers={"X-API-Key": secret})
        assert again.status == 401
        assert again.json()["error"] == "invalid_api_key"


async def test_without_redis_the_cli_revokes_and_says_so_in_one_line(tmp_path: Path) -> None:
    auth = auth_settings(tmp_path)
    async with running_gateway(
        routes({"echo": ["http://127.0.0.1:9"]}, ROUTE), tmp_path, quiet_settings(auth=auth)
    ) as gateway:
        tenant = await gateway.core.tenants.create("acme", [], [], None, WHERE)
        key, _ = await gateway.core.keys.create(tenant.id, name="k", actor_id=None, call=WHERE)
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    environment = command_environment(tmp_path, GATEWAY_REDIS_URL=nobody)
    done = await asyncio.to_thread(gateway_command, tmp_path, environment, "key", "revoke", key.id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"revoked key {key.id}"
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "gateway: could not reach Redis (GATEWAY_REDIS_URL) to announce the revocation: it "
        "stands, and running gateways apply it at their next poll of the database"
    ], done.stderr
    listed = await asyncio.to_thread(
        gateway_command, tmp_path, command_environment(tmp_path), "key", "show", key.id, "--json"
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["revoked_at"] is not None
