"""A route's `roles` and the browser's `Origin` are checked whatever credential kind the route
takes, not only on `auth: jwt` routes: an access token on an `auth: any` route is held to its
tenant's origin whitelist, and `roles` refuse a PAT (on `pat` and `any` routes) and an access
token (on `any` routes) of a user without one of them (docs/authentication.md). Through a
running gateway to a real echo upstream.

Guards against the mutation of gateway/pipeline/authorize.py that ran the authorisation stage on
`jwt` routes only (`Authorize.applies` returning `route.auth is AuthKind.JWT`), which passed every
other test: the shipped table names roles on `jwt` routes only, and no test sent a foreign
`Origin` with an access token to an `any` route.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import ClientResponse, ClientSession

from auth_core.service import CallInfo
from tests.support import Upstream, running_gateway

CALL = CallInfo()
PASSWORD = "correct horse battery"
TENANT_ORIGIN = "https://app.example.com"
FOREIGN_ORIGIN = "https://evil.example.com"


def table(upstream: Upstream) -> str:
    return (
        "version: 1\n"
        f"upstreams:\n  echo: {{targets: ['{upstream.url}']}}\n"
        "routes:\n"
        "  - {name: anyone, path: /any, upstream: echo, auth: any}\n"
        "  - {name: any-admin, path: /any-admin, upstream: echo, auth: any, roles: [admin]}\n"
        "  - {name: pat-admin, path: /pat-admin, upstream: echo, auth: pat, roles: [admin]}\n"
    )


async def assert_refused(response: ClientResponse, code: str) -> None:
    assert response.status == 403, await response.text()
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert (await response.json())["error"] == code
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_roles_and_origins_hold_on_pat_and_any_routes(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    async with running_gateway(table(upstream), tmp_path) as gw:
        core = gw.core
        tenant = await core.tenants.create("Acme", [TENANT_ORIGIN], [], None, CALL)
        end_user = await core.accounts.create(
            "end@acme.example", PASSWORD, verified=True, tenant_id=tenant.id
        )
        browser = (await core.sessions.open(end_user, CALL)).access_token
        user = await core.accounts.create("dev@example.com", PASSWORD, verified=True)
        admin = await core.accounts.create(
            "root@example.com", PASSWORD, roles=("user", "admin"), verified=True
        )
        _, user_pat = await core.pats.create(user.id, {"name": "ci"}, CALL)
        _, admin_pat = await core.pats.create(admin.id, {"name": "ci"}, CALL)
        user_access = (await core.sessions.open(user, CALL)).access_token

        def bearer(secret: str, **extra: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {secret}", **extra}

        # A tenant's browser on an `any` route: another origin is refused, its own passes.
        async with client.get(
            f"{gw.url}/any/feed", headers=bearer(browser, Origin=FOREIGN_ORIGIN)
        ) as response:
            await assert_refused(response, "origin_not_allowed")
        assert upstream.seen == []
        async with client.get(
            f"{gw.url}/any/feed", headers=bearer(browser, Origin=TENANT_ORIGIN)
        ) as response:
            assert response.status == 200, await response.text()
            assert response.headers["Access-Control-Allow-Origin"] == TENANT_ORIGIN
        assert len(upstream.seen) == 1

        # Roles: a user without `admin` is refused whatever it presents, an admin passes.
        for path, secret in (
            ("/pat-admin", user_pat),
            ("/any-admin", user_pat),
            ("/any-admin", user_access),
        ):
            async with client.get(f"{gw.url}{path}/x", headers=bearer(secret)) as response:
                await assert_refused(response, "insufficient_role")
        assert len(upstream.seen) == 1
        for path in ("/pat-admin", "/any-admin"):
            async with client.get(f"{gw.url}{path}/x", headers=bearer(admin_pat)) as response:
                assert response.status == 200, await response.text()
        assert len(upstream.seen) == 3
