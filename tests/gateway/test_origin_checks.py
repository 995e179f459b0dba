"""Browser origins held to the lists that name them, through a running gateway, on SQLite and on
PostgreSQL: a tenant with an empty origin whitelist admits no browser origin (a request without
`Origin` is no browser's and passes), and a CORS preflight on a `jwt` route is refused for an
origin on no list both before the index of every tenant's origins is cached and after.

Each test here guards against a mutation of the origin checks that once passed every other test
(named in its docstring): the request with the origin is made first on a gateway whose caches
are empty, so the path that reads the database is taken, and again once the answer is cached.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import ClientResponse, ClientSession

from auth_core.service import CallInfo
from gateway.config import Settings
from tests.support import Upstream, auth_settings, quiet_settings, running_gateway

CALL = CallInfo()
PLATFORM_ORIGIN = "https://platform.example.com"  # the table's top-level `origins`
TENANT_ORIGIN = "https://a.example.com"
LATER_ORIGIN = "https://c.example.com"
FOREIGN_ORIGIN = "https://evil.example.com"


def table(upstream: Upstream) -> str:
    return (
        "version: 1\n"
        f"origins: ['{PLATFORM_ORIGIN}']\n"
        f"upstreams:\n  echo: {{targets: ['{upstream.url}']}}\n"
        "routes:\n"
        "  - {name: app, path: /app, upstream: echo, auth: jwt}\n"
    )


def settings(directory: Path, database_url: str) -> Settings:
    return quiet_settings(
        auth=auth_settings(directory, database_url=database_url),
    )


async def assert_origin_refused(response: ClientResponse) -> None:
    assert response.status == 403, await response.text()
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert (await response.json())["error"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_an_empty_tenant_origin_whitelist_admits_no_browser_origin(
    tmp_path: Path, database_url: str, upstream: Upstream, client: ClientSession
) -> None:
    """Mutation guarded against: the tenant check in gateway/pipeline/authorize.py treating an
    empty whitelist as "no restriction" (`if allowed and not allowed.allows(origin)`, as the
    check of the top-level list reads), which let every origin through for such a tenant."""
    async with running_gateway(table(upstream), tmp_path, settings(tmp_path, database_url)) as gw:
        core = gw.core
        await core.tenants.create("Listed", [TENANT_ORIGIN], [], None, CALL)
        quiet = await core.tenants.create("Quiet", [], [], None, CALL)
        assert quiet.origins == ()
        user = await core.accounts.create(
            "end@quiet.example", "correct horse battery", verified=True, tenant_id=quiet.id
        )
        bearer = {"Authorization": f"Bearer {(await core.sessions.open(user, CALL)).access_token}"}
        assert core.tenants.cached_policy(quiet.id) is None  # the first check reads the database

        # Any origin at all: another tenant's, the platform's, a stranger's; read from the
        # database the first time, from the cache after.
        for origin in (FOREIGN_ORIGIN, TENANT_ORIGIN, PLATFORM_ORIGIN, FOREIGN_ORIGIN):
            async with client.get(
                f"{gw.url}/app/feed", headers={**bearer, "Origin": origin}
            ) as response:
                await assert_origin_refused(response)
        assert core.tenants.cached_policy(quiet.id) is not None
        assert upstream.seen == []

        # No Origin: not a browser, nothing to hold to a list.
        async with client.get(f"{gw.url}/app/feed", headers=bearer) as response:
            assert response.status == 200, await response.text()
            assert "Access-Control-Allow-Origin" not in response.headers
        assert len(upstream.seen) == 1


async def test_a_preflight_from_an_unlisted_origin_is_refused_cached_or_not(
    tmp_path: Path, database_url: str, upstream: Upstream, client: ClientSession
) -> None:
    """Mutation guarded against: gateway/pipeline/preflight.py answering a preflight 204 with
    `Access-Control-Allow-Origin` for any origin while the index of every tenant's origins is
    not cached yet (the check after `load_origin_index()` dropped), and likewise once cached."""
    async with running_gateway(table(upstream), tmp_path, settings(tmp_path, database_url)) as gw:
        core = gw.core
        await core.tenants.create("Listed", [TENANT_ORIGIN], [], None, CALL)
        await core.tenants.create("Quiet", [], [], None, CALL)

        async def preflight(origin: str) -> ClientResponse:
            return await client.options(
                f"{gw.url}/app/feed",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization",
                },
            )

        async def assert_answered(origin: str) -> None:
            async with await preflight(origin) as response:
                assert response.status == 204, await response.text()
                assert response.headers["Access-Control-Allow-Origin"] == origin

        # The first request this gateway ever serves: nothing is cached.
        assert core.tenants.cached_origin_index() is None
        async with await preflight(FOREIGN_ORIGIN) as response:
            await assert_origin_refused(response)
        # Now answered from the cached index: the same.
        assert core.tenants.cached_origin_index() is not None
        async with await preflight(FOREIGN_ORIGIN) as response:
            await assert_origin_refused(response)
        await assert_answered(TENANT_ORIGIN)
        await assert_answered(PLATFORM_ORIGIN)

        # A new tenant voids the index: a listed origin is answered from a fresh read, and the
        # stranger is still refused from the index that read cached.
        await core.tenants.create("Later", [LATER_ORIGIN], [], None, CALL)
        assert core.tenants.cached_origin_index() is None
        await assert_answered(LATER_ORIGIN)
        async with await preflight(FOREIGN_ORIGIN) as response:
            await assert_origin_refused(response)
        assert upstream.seen == []  # preflights never reach the upstream
