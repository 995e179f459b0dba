"""`Access-Control-Allow-Credentials` only where a route's `cors` asks for it (`credentials:
true`), on its preflights and on its answers alike; never on a route whose `cors` leaves it out
or says `false`, and never on the preflights the gateway answers for `jwt` routes without a
`cors` of their own. Through a running gateway, to a real echo upstream.

Guards against the mutation of gateway/pipeline/preflight.py that marked every allowed answer
with `Access-Control-Allow-Credentials: true` whatever the route said (`if policy.credentials`
dropped or inverted), which passed every other test: a browser would then send its cookies to a
route that never meant to accept them and let the page read the answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import ClientSession

from tests.support import Upstream, running_gateway

ORIGIN = "https://app.example.com"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


def table(upstream: Upstream) -> str:
    cors = f"origins: ['{ORIGIN}']"
    return (
        "version: 1\n"
        f"origins: ['{ORIGIN}']\n"
        f"upstreams:\n  echo: {{targets: ['{upstream.url}']}}\n"
        "routes:\n"
        f"  - {{name: unsaid, path: /unsaid, upstream: echo, auth: none, cors: {{{cors}}}}}\n"
        f"  - {{name: refused, path: /refused, upstream: echo, auth: none,"
        f" cors: {{{cors}, credentials: false}}}}\n"
        f"  - {{name: asked, path: /asked, upstream: echo, auth: none,"
        f" cors: {{{cors}, credentials: true}}}}\n"
        "  - {name: browser, path: /browser, upstream: echo, auth: jwt}\n"
    )


@pytest.mark.parametrize(
    ("path", "credentials"),
    [
        pytest.param("/unsaid", None, id="cors-without-credentials-key"),
        pytest.param("/refused", None, id="cors-credentials-false"),
        pytest.param("/asked", "true", id="cors-credentials-true"),
    ],
)
async def test_credentials_are_allowed_only_where_the_route_asks(
    tmp_path: Path, upstream: Upstream, client: ClientSession, path: str, credentials: str | None
) -> None:
    async with running_gateway(table(upstream), tmp_path) as gw:
        async with client.options(f"{gw.url}{path}/items", headers=PREFLIGHT) as response:
            assert response.status == 204, await response.text()
            assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert response.headers.get("Access-Control-Allow-Credentials") == credentials
        async with client.post(
            f"{gw.url}{path}/items", headers={"Origin": ORIGIN}, json={}
        ) as response:
            assert response.status == 200, await response.text()
            assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert response.headers.get("Access-Control-Allow-Credentials") == credentials
        assert len(upstream.seen) == 1  # the answer, not the preflight


async def test_preflights_of_jwt_routes_without_cors_allow_no_credentials(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    """A `jwt` route's caller sends its token in `Authorization`, not in a cookie."""
    async with running_gateway(table(upstream), tmp_path) as gw:
        async with client.options(f"{gw.url}/browser/items", headers=PREFLIGHT) as response:
            assert response.status == 204, await response.text()
            assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert "Access-Control-Allow-Credentials" not in response.headers
        assert upstream.seen == []
