"""MatchRoute on its own: which route a canonical path, method and Host take, and what the
upstream is sent (docs/routes.md)."""

from __future__ import annotations

import pytest

from gateway.pipeline.match_route import MatchRoute, request_host
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import cases, make_exchange, refusal, routed_exchange

MATCHED = [
    # (description, method, target, Host, route, upstream path)
    ("the route's own path", "GET", "/v1/items", "a", "items", "/v1/items"),
    ("below the route's path", "POST", "/v1/items/7", "a", "items", "/v1/items/7"),
    ("HEAD with GET", "HEAD", "/v1/items", "a", "items", "/v1/items"),
    ("strip_prefix", "GET", "/svc/a/b", "a", "svc", "/a/b"),
    ("strip_prefix of the prefix itself", "GET", "/svc", "a", "svc", "/"),
    ("the route's host", "GET", "/hosted", "api.example.com", "hosted", "/hosted"),
    (
        "the host in any case, with a port",
        "GET",
        "/hosted",
        "API.Example.com:8080",
        "hosted",
        "/hosted",
    ),
]


@pytest.mark.parametrize(("method", "target", "host", "route", "upstream_path"), cases(MATCHED))
def test_the_route_and_upstream_path(
    method: str, target: str, host: str, route: str, upstream_path: str
) -> None:
    raw = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    exchange = routed_exchange(raw, ROUTES)
    assert exchange.route is not None
    assert (exchange.route.name, exchange.upstream_path) == (route, upstream_path)


NOT_FOUND = [
    ("no route at all", "/nothing", "a"),
    ("a longer segment is not below the route", "/v1/itemsX", "a"),
    ("another host", "/hosted", "other.example.com"),
]


@pytest.mark.parametrize(("target", "host"), cases(NOT_FOUND))
def test_no_route_is_404(target: str, host: str) -> None:
    raw = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    exchange = make_exchange(raw, ROUTES)
    exchange.path = target
    refused = refusal(lambda: MatchRoute()(exchange))
    assert (refused.status, refused.code) == (404, "route_not_found")


@pytest.mark.parametrize("method", ["DELETE", "OPTIONS"])
def test_a_method_the_route_does_not_allow_is_405_with_allow(method: str) -> None:
    exchange = make_exchange(request(method, "/v1/items"), ROUTES)
    exchange.path = "/v1/items"
    refused = refusal(lambda: MatchRoute()(exchange))
    assert (refused.status, refused.code) == (405, "method_not_allowed")
    assert refused.headers == {"Allow": "GET, POST, HEAD"}


@pytest.mark.parametrize(
    ("header", "host"),
    [
        (None, ""),
        (b"", ""),
        (b"Example.COM", "example.com"),
        (b"example.com:8443", "example.com"),
        (b"[2001:DB8::1]:443", "2001:db8::1"),
        (b"[2001:db8::1", "[2001:db8::1"),
    ],
)
def test_request_host(header: bytes | None, host: str) -> None:
    assert request_host(header) == host
