"""RouteTable.match: segment boundaries, longest prefix, hosts, methods; and strip_prefix."""

from __future__ import annotations

import pytest

from auth_core.errors import SettingsError
from gateway.errors import MethodNotAllowed, RouteNotFound
from gateway.pipeline.match_route import request_host
from gateway.routing.loader import parse_route_table
from gateway.routing.table import AuthKind, Route, RouteTable
from tests.support import cases


def route(name: str, path: str, **options: object) -> Route:
    return Route(name=name, path=path, upstream="up", auth=AuthKind.NONE, **options)  # type: ignore[arg-type]


TABLE = RouteTable(
    routes=(
        route("root", "/"),
        route("v1", "/v1"),
        route("conversations", "/v1/conversations"),
        route("conversation_items", "/v1/conversations/items"),
        route("api", "/api"),
        route("api_wild", "/api", host="*.example.com"),
        route("api_exact", "/api", host="api.example.com"),
        route("api_local", "/api", host="127.0.0.1"),
        route("reader", "/items", methods=frozenset({"GET"})),
        route("writer", "/items", methods=frozenset({"POST", "PUT"})),
        route("removable", "/trash", methods=frozenset({"DELETE"})),
        route("readonly", "/ro", methods=frozenset({"GET"})),
        route("ro_deep", "/ro/deep"),
        route("hosted_only", "/internal", host="internal.example.com"),
    ),
    upstreams={},
)

NOT_FOUND = "404"

MATCHES = [
    # (description, path, method, host, route name, or NOT_FOUND, or "405 <Allow>")
    ("exact route path", "/v1/conversations", "GET", "", "conversations"),
    ("below the route path", "/v1/conversations/7", "GET", "", "conversations"),
    ("route path with trailing slash", "/v1/conversations/", "GET", "", "conversations"),
    ("longer segment is not below", "/v1/conversationsX", "GET", "", "v1"),
    ("longer segment with slash after", "/v1/conversationsX/7", "GET", "", "v1"),
    ("longest prefix wins", "/v1/conversations/items", "GET", "", "conversation_items"),
    ("longest prefix wins below it", "/v1/conversations/items/3", "GET", "", "conversation_items"),
    (
        "shorter prefix when the longer is a name",
        "/v1/conversations/itemsX",
        "GET",
        "",
        "conversations",
    ),
    ("parent of a route", "/v1", "GET", "", "v1"),
    ("parent with trailing slash", "/v1/", "GET", "", "v1"),
    ("sibling of a route", "/v2", "GET", "", "root"),
    ("root route catches the rest", "/anything/else", "GET", "", "root"),
    ("root itself", "/", "GET", "", "root"),
    ("paths are case-sensitive", "/V1/conversations", "GET", "", "root"),
    ("no host: the host-less route", "/api/x", "GET", "", "api"),
    ("unknown host: the host-less route", "/api/x", "GET", "other.org", "api"),
    ("exact host beats wildcard and none", "/api/x", "GET", "api.example.com", "api_exact"),
    ("wildcard matches a subdomain", "/api/x", "GET", "www.example.com", "api_wild"),
    ("wildcard matches a deeper subdomain", "/api", "GET", "a.b.example.com", "api_wild"),
    ("wildcard does not match the bare domain", "/api", "GET", "example.com", "api"),
    ("wildcard does not match a suffix name", "/api", "GET", "evilexample.com", "api"),
    ("wildcard does not match a lookalike", "/api", "GET", "example.com.evil.org", "api"),
    ("wildcard needs a label before the dot", "/api", "GET", ".example.com", "api"),
    ("IPv4 literal host", "/api", "GET", "127.0.0.1", "api_local"),
    ("IPv6 literal host: the host-less route", "/api", "GET", "::1", "api"),
    ("host route only, other host: shorter route", "/internal/x", "GET", "x.org", "root"),
    ("host route only, its host", "/internal/x", "GET", "internal.example.com", "hosted_only"),
    ("GET route", "/items/1", "GET", "", "reader"),
    ("HEAD rides along with GET", "/items/1", "HEAD", "", "reader"),
    ("same path, other method, other route", "/items/1", "POST", "", "writer"),
    ("same path, PUT", "/items", "PUT", "", "writer"),
    ("neither route has DELETE", "/items", "DELETE", "", "405 GET, POST, PUT, HEAD"),
    ("DELETE-only route refuses GET", "/trash", "GET", "", "405 DELETE"),
    ("DELETE-only route refuses HEAD", "/trash", "HEAD", "", "405 DELETE"),
    ("GET-only route: 405 with HEAD, not the root route", "/ro", "POST", "", "405 GET, HEAD"),
    ("a longer route below a 405 one still matches", "/ro/deep", "POST", "", "ro_deep"),
    ("405 below a method-limited route", "/ro/x", "DELETE", "", "405 GET, HEAD"),
]


@pytest.mark.parametrize(("path", "method", "host", "expected"), cases(MATCHES))
def test_match(path: str, method: str, host: str, expected: str) -> None:
    if expected.startswith("405 "):
        with pytest.raises(MethodNotAllowed) as caught:
            TABLE.match(path, method, host)
        assert caught.value.status == 405
        assert caught.value.headers["Allow"] == expected[4:]
        assert method in str(caught.value)
    else:
        assert TABLE.match(path, method, host).name == expected


NO_ROOT = RouteTable(
    routes=(
        route("conversations", "/v1/conversations"),
        route("hosted", "/h", host="h.example.com"),
        route("wild", "/w", host="*.example.com"),
    ),
    upstreams={},
)

UNMATCHED = [
    # (description, path, host)
    ("nothing at the root", "/", ""),
    ("a longer segment", "/v1/conversationsX", ""),
    ("a parent", "/v1", ""),
    ("a prefix of a segment", "/v1/conv", ""),
    ("case differs", "/V1/conversations", ""),
    ("host route, no host", "/h", ""),
    ("host route, other host", "/h/x", "other.example.com"),
    ("wildcard route, bare domain", "/w", "example.com"),
    ("wildcard route, suffix lookalike", "/w", "evilexample.com"),
]


@pytest.mark.parametrize(("path", "host"), cases(UNMATCHED))
def test_no_route(path: str, host: str) -> None:
    with pytest.raises(RouteNotFound) as caught:
        NO_ROOT.match(path, "GET", host)
    assert caught.value.status == 404


def test_method_not_allowed_is_only_for_the_requests_host() -> None:
    table = RouteTable(
        routes=(
            route("hosted_get", "/x", host="a.example.com", methods=frozenset({"GET"})),
            route("any", "/x", methods=frozenset({"POST"})),
        ),
        upstreams={},
    )
    assert table.match("/x", "POST", "a.example.com").name == "any"
    assert table.match("/x", "GET", "a.example.com").name == "hosted_get"
    with pytest.raises(MethodNotAllowed) as caught:
        table.match("/x", "GET", "b.example.com")
    assert caught.value.headers["Allow"] == "POST"


def test_explicit_head_route_is_reachable_or_refused() -> None:
    text = (
        "version: 1\n"
        "upstreams:\n"
        "  up: {targets: ['http://127.0.0.1:9']}\n"
        "routes:\n"
        "  - {name: reads, path: /a, upstream: up, auth: none, methods: [GET]}\n"
        "  - {name: heads, path: /a, upstream: up, auth: none, methods: [HEAD]}\n"
    )
    try:
        table = parse_route_table(text)
    except SettingsError as exc:
        outcome = f"refused at line {exc.line}"
    else:
        outcome = table.match("/a", "HEAD").name
    # Refusing the pair as overlapping, or sending HEAD to `heads`: either is a fine answer.
    assert outcome in ("refused at line 6", "heads")


HOSTS = [
    # (description, Host header, host used for matching)
    ("no header", None, ""),
    ("empty header", b"", ""),
    ("name", b"api.example.com", "api.example.com"),
    ("upper-case name", b"API.Example.COM", "api.example.com"),
    ("name with port", b"api.example.com:8443", "api.example.com"),
    ("IPv4 with port", b"127.0.0.1:8080", "127.0.0.1"),
    ("IPv6 literal", b"[::1]", "::1"),
    ("IPv6 literal with port", b"[2001:DB8::1]:8080", "2001:db8::1"),
    ("surrounding spaces", b" api.example.com ", "api.example.com"),
]


@pytest.mark.parametrize(("header", "expected"), cases(HOSTS))
def test_request_host(header: bytes | None, expected: str) -> None:
    assert request_host(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"api.example.com:8443", "api_exact"),
        (b"WWW.example.com:80", "api_wild"),
        (b"127.0.0.1:8080", "api_local"),
        (b"[::1]:8080", "api"),
        (b"example.com:443", "api"),
    ],
)
def test_match_by_host_header(header: bytes, expected: str) -> None:
    assert TABLE.match("/api/x", "GET", request_host(header)).name == expected


STRIPS = [
    # (description, route path, strip_prefix, request path, upstream path)
    ("prefix taken off", "/api", True, "/api/x", "/x"),
    ("deeper path", "/api", True, "/api/x/y/", "/x/y/"),
    ("the route path itself is /", "/api", True, "/api", "/"),
    ("route path with trailing slash is /", "/api", True, "/api/", "/"),
    ("two-segment prefix", "/api/v1", True, "/api/v1/items", "/items"),
    ("root route with strip_prefix unchanged", "/", True, "/x/y", "/x/y"),
    ("root route, root path", "/", True, "/", "/"),
    ("no strip_prefix unchanged", "/api", False, "/api/x", "/api/x"),
    ("escapes kept as they are", "/api", True, "/api/a%3Fb", "/a%3Fb"),
]


@pytest.mark.parametrize(("route_path", "strip", "path", "expected"), cases(STRIPS))
def test_upstream_path(route_path: str, strip: bool, path: str, expected: str) -> None:
    chosen = RouteTable(routes=(route("it", route_path, strip_prefix=strip),), upstreams={}).match(
        path, "GET"
    )
    assert chosen.upstream_path(path) == expected


def test_uses_hosts() -> None:
    assert TABLE.uses_hosts
    assert not RouteTable(routes=(route("a", "/a"),), upstreams={}).uses_hosts
