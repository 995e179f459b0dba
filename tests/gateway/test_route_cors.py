"""A route's own `cors`: preflights answered by the gateway from it (403 for another origin),
answers to an allowed origin marked so that the browser may read them, nothing added for other
origins; on a jwt route the tenant's origin whitelist still decides who gets through."""

from __future__ import annotations

from pathlib import Path

from aiohttp import ClientSession

from auth_core.service import CallInfo
from tests.support import Upstream, running_gateway

CALL = CallInfo()


def table(upstream: Upstream) -> str:
    return (
        "version: 1\n"
        f"upstreams:\n  echo: {{targets: ['{upstream.url}']}}\n"
        "routes:\n"
        "  - name: public\n"
        "    path: /public\n"
        "    upstream: echo\n"
        "    auth: none\n"
        "    cors:\n"
        "      origins: ['https://app.example.com']\n"
        "      methods: [GET, POST]\n"
        "      headers: [Content-Type]\n"
        "      expose: [X-Request-Id]\n"
        "      credentials: true\n"
        "      max_age: 1h\n"
        "  - {name: open, path: /open, upstream: echo, auth: none}\n"
    )


async def test_preflights_and_answers_follow_the_routes_cors(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    async with running_gateway(table(upstream), tmp_path) as gw:
        preflight = {
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        async with client.options(f"{gw.url}/public/items", headers=preflight) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
            assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
            assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
            assert response.headers["Access-Control-Allow-Credentials"] == "true"
            assert response.headers["Access-Control-Max-Age"] == "3600"
        foreign = {**preflight, "Origin": "https://evil.example.com"}
        async with client.options(f"{gw.url}/public/items", headers=foreign) as response:
            assert response.status == 403
            assert (await response.json())["error"] == "origin_not_allowed"
        assert upstream.seen == []  # preflights never reach the upstream

        async with client.get(
            f"{gw.url}/public/items", headers={"Origin": "https://app.example.com"}
        ) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
            assert response.headers["Access-Control-Expose-Headers"] == "X-Request-Id"
            assert response.headers.getall("Vary") == ["Origin"]
        async with client.get(
            f"{gw.url}/public/items", headers={"Origin": "https://evil.example.com"}
        ) as response:
            assert response.status == 200  # served, but the browser may not read it
            assert "Access-Control-Allow-Origin" not in response.headers
        # A route without cors: its preflight goes to the upstream as any request.
        async with client.options(f"{gw.url}/open/items", headers=preflight) as response:
            assert "Access-Control-Allow-Origin" not in response.headers
        assert len(upstream.seen) == 3


async def test_on_a_jwt_route_the_tenant_whitelist_still_decides(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    text = (
        "version: 1\n"
        f"upstreams:\n  echo: {{targets: ['{upstream.url}']}}\n"
        "routes:\n"
        "  - name: app\n"
        "    path: /app\n"
        "    upstream: echo\n"
        "    auth: jwt\n"
        "    cors: {origins: ['https://a.example.com', 'https://b.example.com']}\n"
    )
    async with running_gateway(text, tmp_path) as gw:
        core = gw.core
        tenant = await core.tenants.create("Acme", ["https://a.example.com"], [], None, CALL)
        user = await core.accounts.create(
            "ada@example.com", "correct horse battery", verified=True, tenant_id=tenant.id
        )
        pair = await core.sessions.open(user, CALL)
        bearer = {"Authorization": f"Bearer {pair.access_token}"}
        async with client.get(
            f"{gw.url}/app", headers={**bearer, "Origin": "https://a.example.com"}
        ) as response:
            assert response.status == 200
            assert response.headers.getall("Access-Control-Allow-Origin") == [
                "https://a.example.com"
            ]
        # On the route's list, but not on the tenant's: refused.
        async with client.get(
            f"{gw.url}/app", headers={**bearer, "Origin": "https://b.example.com"}
        ) as response:
            assert response.status == 403
