"""Start example upstreams and the gateway in one process, and say what to try."""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from auth_core.service import AuthCore, CallInfo
from gateway.config import Settings
from gateway.demo.echo import echo_app
from gateway.routing.table import RouteTable
from gateway.server.run import Worker, bind
from gateway.server.startup import bind_or_fail

ECHO_UPSTREAM = "echo"


async def _demo(settings: Settings, table: RouteTable, config: Path, host: str, port: int) -> None:
    runners: list[web.AppRunner] = []
    upstream = table.upstreams.get(ECHO_UPSTREAM)
    for target in upstream.targets if upstream else ():
        runner = web.AppRunner(echo_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, target.host, target.port).start()
        runners.append(runner)
    worker = Worker(settings, table, bind_or_fail(bind, host, port), config_path=config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, worker.reload)
    await worker.start()
    assert worker.core is not None
    password = await _demo_user(worker.core)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{worker.port}"
    echo_path = next((r.path for r in table.routes if r.upstream == ECHO_UPSTREAM), None)
    say = partial(print, file=sys.stderr)
    say(f"gateway demo listening on {base} (routes from {config})")
    say("try:")
    if echo_path is not None:
        say(f"  curl -i {base}{echo_path}/hello?name=world")
        say(f"  curl -i -X POST -d '{{\"hi\": 1}}' {base}{echo_path}/items")
    say(f"  curl -i {base}/nowhere        # 404 route_not_found, problem+json")
    if password is not None:
        say(f"log in as {DEMO_EMAIL} (password {password}):")
        say(
            f"  TOKEN=$(curl -s -X POST {base}/api/v1/auth/login -H 'Content-Type: "
            f'application/json\' -d \'{{"email": "{DEMO_EMAIL}", "password": '
            f"\"{password}\"}}' | python3 -c 'import json,sys; "
            'print(json.load(sys.stdin)["access_token"])\')'
        )
        say(f'  curl -i {base}/private/hello -H "Authorization: Bearer $TOKEN"')
        say(f"  curl -i {base}/private/hello        # 401 missing_credentials")
        socket_path = next((r.path for r in table.routes if r.websocket), None)
        if socket_path is not None:
            ws_base = base.replace("http://", "ws://", 1)
            say(f'  python -m gateway.demo.wsclient {ws_base}{socket_path}/chat "$TOKEN"')
    browser_path = next((r.path for r in table.routes if r.browser), None)
    if browser_path is not None:
        say(
            f"a server-rendered app: open {base}{browser_path}/ in a browser (the login page first)"
        )
    key = await _demo_key(worker.core, base)
    partner = next(
        (r.path for r in table.routes if r.auth == "api_key" and r.upstream != "auth_core"), None
    )
    say("a tenant's SDK backend, with the demo tenant's API key (new each run, from loopback):")
    if partner is not None:
        say(f'  curl -i {base}{partner}/hello -H "X-API-Key: {key}"')
    say(
        f"  curl -s -X POST {base}/v1/sdk/session -H 'X-API-Key: {key}' "
        "-H 'Content-Type: application/json' -d '{\"external_user_id\": \"user-1\"}'"
    )
    say(f"  curl -s {base}/ready")
    say(f"  curl -s {base}/metrics | grep gateway_requests_total")
    say("Ctrl-C stops it.")
    await stop.wait()
    await worker.stop()
    for runner in runners:
        await runner.cleanup()


DEMO_EMAIL = "demo@example.com"


async def _demo_user(core: AuthCore) -> str | None:
    """Create the demo user on the first run; its password, or None if it existed."""
    store = core.store
    if await store.users.by_email(DEMO_EMAIL) is not None:
        return None
    password = secrets.token_urlsafe(9)
    await core.accounts.create(DEMO_EMAIL, password, roles=("user",), verified=True)
    return password


DEMO_TENANT = "demo"


async def _demo_key(core: AuthCore, base: str) -> str:
    """The demo tenant (loopback whitelisted, the demo's origins) and a fresh API key for it;
    the previous run's key is revoked, since its secret was shown once and is gone."""
    store = core.store
    call = CallInfo()
    tenant = next((t for t in await store.tenants.list() if t.name == DEMO_TENANT), None)
    if tenant is None:
        origins = [base, base.replace("127.0.0.1", "localhost")]
        tenant = await core.tenants.create(
            DEMO_TENANT, origins, ["127.0.0.0/8", "::1/128"], "demo", call
        )
    for old in await store.api_keys.of_tenant(tenant.id):
        if old.name == DEMO_TENANT and old.revoked_at is None:
            await core.keys.revoke(old.id, tenant_id=tenant.id, actor_id="demo", call=call)
    _, secret = await core.keys.create(tenant.id, name=DEMO_TENANT, actor_id="demo", call=call)
    return secret


def run_demo(settings: Settings, table: RouteTable, config: Path, host: str, port: int) -> int:
    """Serve the demo until interrupted."""
    upstream = table.upstreams.get(ECHO_UPSTREAM)
    for target in upstream.targets if upstream else ():
        if urlsplit(target.url).hostname not in ("127.0.0.1", "localhost", "::1"):
            print(f"demo: upstream {ECHO_UPSTREAM} must be on loopback", file=sys.stderr)
            return 1
    try:
        import uvloop

        uvloop.run(_demo(settings, table, config, host, port))
    except ImportError:  # pragma: no cover
        asyncio.run(_demo(settings, table, config, host, port))
    return 0
