"""Schemathesis against the running gateway: every operation of the served OpenAPI document,
every default check, positive and negative data, failing on any finding. The requests carry an
admin's access token and a tenant's API key (schemathesis_hooks.py), so they reach past 401."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

from auth_core.calls import CallInfo
from auth_core.errors import GatewayError
from auth_core.models import Principal
from tests.gateway.test_openapi import SHIPPED_ROUTES
from tests.support import LOOPBACK, auth_settings, quiet_settings, running_gateway, serving

PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


# About a minute: five examples an operation, the default phases and checks.
@pytest.mark.timeout(240)
async def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    # No bans: the fuzzer's wrong credentials would otherwise ban loopback within seconds.
    settings = quiet_settings(auth=auth_settings(tmp_path, ban_threshold=0))
    async with running_gateway(SHIPPED_ROUTES.read_text(), tmp_path, settings) as gateway:
        core = gateway.core
        await core.accounts.create(
            "root@example.com", PASSWORD, roles=("user", "admin"), verified=True
        )
        where = CallInfo(ip="127.0.0.1")
        tenant = await core.tenants.create("acme", [], ["127.0.0.0/8"], None, where)
        _, api_key = await core.keys.create(tenant.id, name="fuzz", actor_id=None, call=where)
        made = itertools.count()
        held: dict[str, str] = {}

        async def admin(request: web.Request) -> web.Response:
            """The admin's access token: the one held while it works, else a new session."""
            try:
                core.authenticate_access_token(held["admin"])
            except (KeyError, GatewayError):
                pair = await core.sessions.login("root@example.com", PASSWORD, where)
                held["admin"] = pair.access_token
            return web.Response(text=held["admin"])

        async def service(request: web.Request) -> web.Response:
            """A service token: the one held while it works, else a new one."""
            try:
                found = core.service_tokens.authenticate(held["service"], where)
                if not isinstance(found, Principal):
                    await found
            except (KeyError, GatewayError):
                name = f"fuzz-{next(made)}"
                _, held["service"] = await core.service_tokens.create(
                    name, actor_id=None, call=where
                )
            return web.Response(text=held["service"])

        dispenser = web.Application()
        dispenser.router.add_post("/admin", admin)
        dispenser.router.add_post("/service", service)
        async with serving(dispenser) as port:
            credentials = {"dispenser": f"http://{LOOPBACK}:{port}", "api_key": api_key}
            await fuzz(gateway.url, credentials, tmp_path)


async def fuzz(url: str, credentials: dict[str, str], directory: Path) -> None:
    """schemathesis run against the gateway at `url`; fails on any finding."""
    environment = {
        **os.environ,
        "GATEWAY_FUZZ_CREDENTIALS": json.dumps(credentials),
        "SCHEMATHESIS_HOOKS": "tests.gateway.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
    }
    # forwardAuth answers whatever method the proxy's subrequest keeps, QUERY or
    # PROPFIND included: no method of it is "unsupported".
    (directory / "schemathesis.toml").write_text(
        '[[operations]]\ninclude-path = "/api/v1/auth/validate"\n'
        "checks.unsupported_method.enabled = false\n"
    )
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        url + "/api/v1/openapi.json",
        "--max-examples",
        "5",
        "--seed",
        "1",
        "--no-color",
        "--generation-database",
        "none",
        # The document's one rule no schema can state (info.description): no string of a
        # body, keys included, holds NUL or an unpaired surrogate.
        "--generation-allow-x00",
        "false",
        "--generation-codec",
        "utf-8",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=environment,
        cwd=directory,
    )
    out, _ = await process.communicate()
    # Any finding (a failed check of any operation) is a non-zero exit.
    assert process.returncode == 0, out.decode(errors="replace")[-8000:]
