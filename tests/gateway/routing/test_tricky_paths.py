"""Tricky request targets, sent raw through a real gateway to two real upstreams.

Every target either gets a 400 `invalid_request` and reaches no upstream, or reaches exactly the
upstream of the route its canonical form matches, with exactly that canonical path (the form that
matched is the form forwarded). No target may be a way round a route (docs/routes.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.routing.loader import parse_route_table
from gateway.routing.paths import PathError, canonical_path, split_target
from tests.support import (
    RawResponse,
    RunningGateway,
    Upstream,
    cases,
    raw_request,
    routes,
    running_gateway,
    upstream_server,
)

BAD = None  # 400 invalid_request, and no upstream sees anything


def route_table(a: str, b: str) -> str:
    # /admin would carry `auth: jwt` in production; this build enforces `none` only, so the
    # test tells the routes apart by where requests land instead of by who may pass.
    return routes(
        {"a": [a], "b": [b]},
        "{name: public, path: /public, upstream: a, auth: none}",
        "{name: admin, path: /admin, upstream: b, auth: none}",
        "{name: stripped, path: /s, upstream: b, auth: none, strip_prefix: true}",
        "{name: rest, path: /, upstream: a, auth: none}",
    )


CASES = [
    # (description, raw request target, (upstream, path and query it receives) or BAD)
    ("public", b"/public", ("a", "/public")),
    ("admin", b"/admin", ("b", "/admin")),
    ("dot-dot out of public", b"/public/../admin", ("b", "/admin")),
    ("%2e%2e out of public", b"/public/%2e%2e/admin", ("b", "/admin")),
    ("%2E%2E out of public, deeper", b"/public/%2E%2E/admin/x", ("b", "/admin/x")),
    ("mixed .%2e out of public", b"/public/.%2e/admin", ("b", "/admin")),
    ("mixed %2e. out of public", b"/public/%2e./admin", ("b", "/admin")),
    ("two levels up", b"/public/x/../../admin", ("b", "/admin")),
    ("above the root", b"/../../admin", ("b", "/admin")),
    ("%2e%2e above the root", b"/%2e%2e/admin", ("b", "/admin")),
    ("double slash", b"//admin", ("b", "/admin")),
    ("many slashes", b"///admin//x", ("b", "/admin/x")),
    ("dot segment first", b"/./admin", ("b", "/admin")),
    ("encoded a", b"/%61dmin", ("b", "/admin")),
    ("fully encoded admin", b"/%61%64%6d%69%6e/x", ("b", "/admin/x")),
    ("admin with trailing slash", b"/admin/", ("b", "/admin/")),
    ("dot-dot out of admin", b"/admin/..", ("a", "/")),
    ("dot-dot inside admin", b"/admin/x/..", ("b", "/admin/")),
    ("%2e%2e to the root", b"/public/%2e%2e", ("a", "/")),
    ("upper case is another path", b"/ADMIN", ("a", "/ADMIN")),
    ("mixed case is another path", b"/Admin/x", ("a", "/Admin/x")),
    ("longer segment is another path", b"/adminX", ("a", "/adminX")),
    ("dots glued to a name", b"/public%2e%2e/admin", ("a", "/public../admin")),
    (
        "double-encoded dots stay encoded",
        b"/public/%252e%252e/admin",
        ("a", "/public/%252e%252e/admin"),
    ),
    ("encoded semicolon stays in public", b"/public/%2e%2e%3b/admin", ("a", "/public/..%3B/admin")),
    ("query not touched", b"/public?x=/../admin", ("a", "/public?x=/../admin")),
    (
        "odd query kept byte for byte",
        b"/public?a=%zz&b=..%2f&c=%00",
        ("a", "/public?a=%zz&b=..%2f&c=%00"),
    ),
    ("backslash in the query kept", b"/public?x=\\", ("a", "/public?x=\\")),
    ("path canonical, query kept", b"/public/../admin?q=%2e%2e", ("b", "/admin?q=%2e%2e")),
    ("strip_prefix", b"/s/x", ("b", "/x")),
    ("strip_prefix of the route path", b"/s", ("b", "/")),
    ("strip_prefix after dots", b"/s/a/../b", ("b", "/b")),
    ("dots out of a stripped route", b"/s/%2e%2e/admin", ("b", "/admin")),
    ("%2f after dots", b"/public/..%2fadmin", BAD),
    ("%2F after dots", b"/public/..%2Fadmin", BAD),
    ("%2f everywhere", b"/public%2f..%2fadmin", BAD),
    ("%2e%2e%2f", b"/public/%2e%2e%2fadmin", BAD),
    ("%2f in admin", b"/admin%2fx", BAD),
    ("..;/ (Tomcat)", b"/public/..;/admin", BAD),
    ("..;x/", b"/public/..;x/admin", BAD),
    ("%2e%2e;/", b"/public/%2e%2e;/admin", BAD),
    (".;/", b"/public/.;/admin", BAD),
    ("path parameter on the protected name (Tomcat: /admin)", b"/admin;x", BAD),
    ("path parameter after a public prefix", b"/public;x/../admin", BAD),
    ("%00", b"/admin%00", BAD),
    ("%00 then dots", b"/public/%00/../admin", BAD),
    ("%0d%0a", b"/admin%0d%0aX-Injected:%201", BAD),
    ("%7f", b"/admin%7f", BAD),
    ("raw backslashes", b"/public\\..\\admin", BAD),
    ("%5c", b"/public/..%5cadmin", BAD),
    ("%5C", b"/public/..%5Cadmin", BAD),
    ("malformed escape", b"/admin%zz", BAD),
    ("short escape", b"/admin%4", BAD),
    ("trailing %", b"/admin%", BAD),
    ("fragment", b"/public#/../admin", BAD),
    ("raw non-ASCII", b"/adm\xc3\xadn", BAD),
    ("raw NUL", b"/admin\x00", BAD),
    ("raw tab", b"/admin\t", BAD),
    ("raw DEL", b"/admin\x7f", BAD),
    ("raw space", b"/public /admin", BAD),
    ("absolute-form with dots", b"http://t/public/../admin", BAD),
    ("absolute-form", b"http://t/admin", BAD),
    ("asterisk-form", b"*", BAD),
]


@dataclass
class Site:
    gateway: RunningGateway
    upstreams: dict[str, Upstream]
    routes_yaml: str


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with upstream_server() as a, upstream_server() as b:
        text = route_table(a.url, b.url)
        async with running_gateway(text, tmp_path) as gateway:
            yield Site(gateway, {"a": a, "b": b}, text)


def _expected_by_the_table(routes_yaml: str, target: bytes) -> tuple[str, str] | None:
    """What canonical_path and RouteTable.match say; must agree with the hand-written table."""
    table = parse_route_table(routes_yaml)
    try:
        path, query = split_target(target.decode("latin-1"))
        canonical = canonical_path(path)
    except PathError:
        return BAD
    route = table.match(canonical, "GET")
    return route.upstream, route.upstream_path(canonical) + query


async def _send(port: int, target: bytes) -> RawResponse:
    return await raw_request(
        port, b"GET " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )


@pytest.mark.parametrize(("target", "expected"), cases(CASES))
async def test_tricky_target(site: Site, target: bytes, expected: tuple[str, str] | None) -> None:
    assert _expected_by_the_table(site.routes_yaml, target) == expected

    response = await _send(site.gateway.port, target)

    if expected is BAD:
        assert response.status == 400
        assert response.header("Content-Type") == "application/problem+json"
        assert response.json()["error"] == "invalid_request"
        assert {name: up.seen for name, up in site.upstreams.items()} == {"a": [], "b": []}
        return
    name, forwarded = expected
    assert response.status == 200, response.body
    document = response.json()
    assert document["port"] == site.upstreams[name].port
    assert document["path"] == forwarded
    assert {key: len(up.seen) for key, up in site.upstreams.items()} == {
        key: int(key == name) for key in site.upstreams
    }


async def test_fragment_after_the_query_is_refused(site: Site) -> None:
    response = await _send(site.gateway.port, b"/public?x#y")
    assert response.status == 400
    assert {name: up.seen for name, up in site.upstreams.items()} == {"a": [], "b": []}
