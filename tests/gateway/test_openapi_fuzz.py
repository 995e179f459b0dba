"""Schemathesis against the running gateway: every operation of the served OpenAPI document,
every default check, positive and negative data, failing on any finding. The requests carry an
admin's access token and a tenant's API key (schemathesis_hooks.py), so they reach past 401."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from auth_core.calls import CallInfo
from tests.gateway.test_openapi import SHIPPED_ROUTES
from tests.support import auth_settings, quiet_settings, running_gateway

PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


# About a minute: ten examples an operation, the default phases and checks.
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
        tokens = [
            (await core.sessions.login("root@example.com", PASSWORD, where)).access_token
            for _ in range(40)
        ]
        tenant = await core.tenants.create("acme", [], ["127.0.0.0/8"], None, where)
        _, api_key = await core.keys.create(tenant.id, name="fuzz", actor_id=None, call=where)
        credentials = {"url": gateway.url, "admin_tokens": tokens, "api_key": api_key}
        environment = {
            **os.environ,
            "GATEWAY_FUZZ_CREDENTIALS": json.dumps(credentials),
            "SCHEMATHESIS_HOOKS": "tests.gateway.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
        }
        # forwardAuth answers whatever method the proxy's subrequest keeps, QUERY or
        # PROPFIND included: no method of it is "unsupported".
        (tmp_path / "schemathesis.toml").write_text(
            '[[operations]]\ninclude-path = "/api/v1/auth/validate"\n'
            "checks.unsupported_method.enabled = false\n"
        )
        process = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "run",
            gateway.url + "/api/v1/openapi.json",
            "--max-examples",
            "10",
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
            cwd=tmp_path,
        )
        out, _ = await process.communicate()
        # Any finding (a failed check of any operation) is a non-zero exit.
        assert process.returncode == 0, out.decode(errors="replace")[-8000:]
