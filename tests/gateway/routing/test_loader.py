"""routes.yaml -> RouteTable, and `file:line: reason` for every mistake (docs/routes.md)."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import netaddr
import pytest

from auth_core.errors import SettingsError
from auth_core.limits import Rate
from gateway.routing.loader import load_route_table, parse_route_table
from gateway.routing.table import AuthKind, RateRule, Route, Target, Upstream

VALID = """\
# every setting this build accepts
version: 1
origins: ["https://App.Example.com", "http://localhost:3000"]
upstreams:
  conversations:
    targets: ["http://127.0.0.1:8001", "https://backend.internal"]
    connect_timeout: 500ms
    timeout: 1m
    max_fails: 5
    fail_timeout: 30s
    keepalive: 0
    idle_timeout: 2h
  sockets:
    targets: ["http://[::1]:8100/"]
routes:
  - {name: public, path: /v1/public, upstream: conversations, auth: none}
  - name: conversations
    path: /v1/conversations
    methods: [get, Post]
    host: API.Example.com
    upstream: conversations
    auth: none
    strip_prefix: true
    timeout: 2.5
    max_body: 512k
    roles: []
  - {name: wild, path: /w, host: "*.Example.COM", upstream: sockets, auth: none, max_body: 10mb}
  - {name: root, path: /, upstream: sockets, auth: none, websocket: false}
metrics:
  allow: ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
"""


def test_valid_file_loads_into_the_expected_objects() -> None:
    table = parse_route_table(VALID.encode(), "conf/routes.yaml")

    assert table.source == "conf/routes.yaml"
    assert table.sha256 == hashlib.sha256(VALID.encode()).hexdigest()
    assert table.origins.exact == frozenset({"https://app.example.com", "http://localhost:3000"})
    # An https target without a `tls` block: the system's CAs, certificate and name checked.
    tls = table.upstreams["conversations"].tls
    assert tls is not None
    assert (tls.server_name, tls.verify) == (None, True)
    assert tls.context.verify_mode == ssl.CERT_REQUIRED
    assert tls.context.check_hostname
    assert table.upstreams["sockets"].tls is None
    assert table.upstreams == {
        "conversations": Upstream(
            name="conversations",
            targets=(
                Target("http://127.0.0.1:8001", "http", "127.0.0.1", 8001),
                Target("https://backend.internal", "https", "backend.internal", 443),
            ),
            connect_timeout=0.5,
            timeout=60.0,
            max_fails=5,
            fail_timeout=30.0,
            keepalive=0,
            idle_timeout=7200.0,
            tls=tls,
        ),
        "sockets": Upstream(
            name="sockets", targets=(Target("http://[::1]:8100/", "http", "::1", 8100),)
        ),
    }
    assert table.routes == (
        Route(
            name="public", path="/v1/public", upstream="conversations", auth=AuthKind.NONE, line=16
        ),
        Route(
            name="conversations",
            path="/v1/conversations",
            upstream="conversations",
            auth=AuthKind.NONE,
            methods=frozenset({"GET", "POST"}),
            host="api.example.com",
            strip_prefix=True,
            timeout=2.5,
            max_body=512 * 1024,
            roles=frozenset(),
            line=17,
        ),
        Route(
            name="wild",
            path="/w",
            upstream="sockets",
            auth=AuthKind.NONE,
            host="*.example.com",
            max_body=10 * 1024 * 1024,
            line=27,
        ),
        Route(name="root", path="/", upstream="sockets", auth=AuthKind.NONE, line=28),
    )
    assert table.uses_hosts
    allow = table.metrics_allow
    assert isinstance(allow, netaddr.IPSet)
    for address, allowed in [
        ("10.200.3.4", True),
        ("192.0.2.7", True),
        ("192.0.2.8", False),
        ("2001:db8::5", True),
        ("127.0.0.1", False),  # the file's list replaces the default
    ]:
        assert (address in allow) is allowed, address


def test_defaults() -> None:
    table = parse_route_table(
        "version: 1\n"
        "upstreams: {up: {targets: ['http://localhost']}}\n"
        "routes: [{name: r, path: /r, upstream: up, auth: none}]\n"
    )
    assert table.upstreams["up"] == Upstream(
        name="up", targets=(Target("http://localhost", "http", "localhost", 80),)
    )
    assert table.upstreams["up"].targets[0].authority == "localhost"
    (only,) = table.routes
    assert only.methods is None
    assert only.host is None
    assert not only.strip_prefix
    assert only.timeout is None
    assert only.max_body == 10 * 1024 * 1024
    assert only.roles == frozenset()
    assert only.line == 3
    assert not table.origins
    assert "127.0.0.1" in table.metrics_allow
    assert "::1" in table.metrics_allow
    assert "10.0.0.1" not in table.metrics_allow
    assert not table.uses_hosts


def test_credentials_and_underscores_are_off_unless_said() -> None:
    table = parse_route_table(
        "version: 1\n"
        "upstreams: {up: {targets: ['http://localhost']}}\n"
        "routes:\n"
        "  - {name: plain, path: /a, upstream: up, auth: jwt}\n"
        "  - {name: own-auth, path: /b, upstream: up, auth: api_key, forward_credentials: true}\n"
        "  - {name: wsgi, path: /c, upstream: up, auth: none, underscores_in_headers: true}\n"
    )
    flags = {r.name: (r.forward_credentials, r.underscores_in_headers) for r in table.routes}
    assert flags == {
        "plain": (False, False),
        "own-auth": (True, False),
        "wsgi": (False, True),
    }


def test_browser_is_off_unless_said() -> None:
    table = parse_route_table(
        "version: 1\n"
        "upstreams: {up: {targets: ['http://localhost']}}\n"
        "routes:\n"
        "  - {name: api, path: /a, upstream: up, auth: jwt}\n"
        "  - {name: dashboard, path: /b, upstream: up, auth: jwt, browser: true}\n"
        "  - {name: either, path: /c, upstream: up, auth: any, browser: true}\n"
    )
    assert {r.name: r.browser for r in table.routes} == {
        "api": False,
        "dashboard": True,
        "either": True,
    }


def test_top_level_underscores_in_headers_is_every_routes_default() -> None:
    table = parse_route_table(
        "version: 1\n"
        "underscores_in_headers: true\n"
        "upstreams: {up: {targets: ['http://localhost']}}\n"
        "routes:\n"
        "  - {name: inherits, path: /a, upstream: up, auth: none}\n"
        "  - {name: refuses, path: /b, upstream: up, auth: none, underscores_in_headers: false}\n"
    )
    flags = {route.name: route.underscores_in_headers for route in table.routes}
    assert flags == {"inherits": True, "refuses": False}


def test_sha256_is_of_the_bytes_as_written() -> None:
    one = parse_route_table(VALID)
    two = parse_route_table(VALID.replace("# every setting", "# each setting"))
    assert one.routes == two.routes
    assert one.sha256 != two.sha256


def test_auth_kinds_this_build_enforces_are_accepted_with_roles() -> None:
    table = parse_route_table(
        "version: 1\n"
        "routes:\n"
        "  - {name: me, path: /me, upstream: auth_core, auth: jwt, roles: [user, admin]}\n",
        auth_kinds=(AuthKind.NONE, AuthKind.JWT),
        builtin_upstreams=("auth_core",),
    )
    (me,) = table.routes
    assert me.auth is AuthKind.JWT
    assert me.roles == frozenset({"user", "admin"})
    assert me.upstream == "auth_core"
    assert table.upstreams == {}


def test_a_routes_cors() -> None:
    table = parse_route_table(
        "version: 1\n"
        "upstreams:\n"
        "  up: {targets: ['http://127.0.0.1:8001']}\n"
        "routes:\n"
        "  - name: a\n"
        "    path: /a\n"
        "    upstream: up\n"
        "    auth: none\n"
        "    cors:\n"
        "      origins: ['https://app.example.com', 'https://*.example.org']\n"
        "      methods: [GET, POST]\n"
        "      headers: [Content-Type, X-Trace]\n"
        "      expose: [X-Request-Id]\n"
        "      credentials: true\n"
        "      max_age: 1h\n"
    )
    (route,) = table.routes
    assert route.cors is not None
    assert route.cors.origins.allows("https://app.example.com")
    assert route.cors.origins.allows("https://a.example.org")
    assert not route.cors.origins.allows("https://example.org")
    assert route.cors.methods == frozenset({"GET", "POST"})
    assert route.cors.headers == ("Content-Type", "X-Trace")
    assert route.cors.expose == ("X-Request-Id",)
    assert route.cors.credentials is True
    assert route.cors.max_age == 3600


def test_rate_limits_one_or_layered() -> None:
    table = parse_route_table(
        "version: 1\n"
        "upstreams:\n"
        "  up: {targets: ['http://127.0.0.1:8001']}\n"
        "routes:\n"
        "  - {name: a, path: /a, upstream: up, auth: none,"
        " rate_limit: {key: ip, limit: 10, per: 1s}}\n"
        "  - name: b\n"
        "    path: /b\n"
        "    upstream: up\n"
        "    auth: api_key\n"
        "    rate_limit:\n"
        "      - {key: tenant, limit: 1000, per: 1m}\n"
        "      - {key: credential, limit: 100, per: 1m}\n"
    )
    a, b = table.routes
    assert a.rate_limits == (RateRule("ip", Rate(10, 1.0)),)
    assert b.rate_limits == (
        RateRule("tenant", Rate(1000, 60.0)),
        RateRule("credential", Rate(100, 60.0)),
    )


def test_load_route_table_reads_the_file(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_bytes(VALID.encode())
    table = load_route_table(config)
    assert table.source == str(config)
    assert table.sha256 == hashlib.sha256(VALID.encode()).hexdigest()
    assert [r.name for r in table.routes] == ["public", "conversations", "wild", "root"]


def test_load_route_table_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SettingsError) as caught:
        load_route_table(missing)
    assert caught.value.source == str(missing)
    assert "cannot read the file" in caught.value.reason
    assert str(caught.value).startswith(f"{missing}:")


def test_load_route_table_on_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read the file"):
        load_route_table(tmp_path)


# -- invalid files ------------------------------------------------------------------------------

HEAD = 'version: 1\nupstreams:\n  up:\n    targets: ["http://127.0.0.1:8001"]\nroutes:\n'
# HEAD is lines 1-5; the first route is on line 6.
R = "  - {name: a, path: /a, upstream: up, auth: none}\n"


T = 'targets: ["http://h:1"]'  # a valid targets line for upstream_file
CANON = "must be a canonical path"


def upstream_file(*settings: str) -> str:
    """A file whose one upstream has `settings` from line 4 on."""
    lines = ["version: 1", "upstreams:", "  up:", *(f"    {s}" for s in settings)]
    return "\n".join([*lines, "routes:", "  - {name: a, path: /a, upstream: up, auth: none}"])


def route_file(*options: str) -> str:
    """A file whose second route (block style, from line 7) has `options`, one a line."""
    return HEAD + R + "  - name: b\n" + "".join(f"    {o}\n" for o in options)


B = ("path: /b", "upstream: up", "auth: none")  # the rest of a valid route b (lines 8-10)

INVALID = [
    # (description, file text, line, reason fragment)
    ("empty file", "", 1, "the file is empty"),
    ("only comments", "# nothing\n# here\n", 1, "the file is empty"),
    ("invalid YAML", HEAD + "  - name: a\n    auth: none: x\n", 7, "not valid YAML"),
    (
        "unclosed flow mapping",
        HEAD + "  - {name: a, path: /a\n  - {name: b}\n",
        7,
        "not valid YAML",
    ),
    ("tab indentation", "version: 1\nroutes:\n\t- x\n", 3, "not valid YAML"),
    (
        "YAML merge key",
        HEAD + "  - &r {name: a, path: /a, upstream: up, auth: none}\n  - {<<: *r, name: b}\n",
        7,
        "",
    ),
    ("unknown YAML tag", "version: !custom 1\nroutes: []\n", 1, ""),
    ("YAML int tag on a word", "version: !!int abc\nroutes: []\n", 1, ""),
    ("top level is a list", "- version: 1\n", 1, "the top level must be a mapping"),
    ("unknown top-level key", "version: 1\nroute: []\nroutes: []\n", 2, "unknown key 'route'"),
    ("non-string top-level key", "version: 1\n1: x\nroutes: []\n", 2, "keys must be strings"),
    (
        "duplicate top-level key",
        "version: 1\nversion: 1\nroutes: []\n",
        2,
        "duplicate key 'version'",
    ),
    ("missing version", "# routes\nroutes: []\n", 2, "missing 'version: 1'"),
    ("version 2", "version: 2\nroutes: []\n", 1, "version must be 1"),
    ("version as a string", "version: '1'\nroutes: []\n", 1, "version must be 1"),
    ("version: true", "version: true\nroutes: []\n", 1, "version must be 1"),
    ("missing routes", "version: 1\nupstreams: {}\n", 1, "missing 'routes'"),
    ("routes not a list", "version: 1\nroutes:\n  a: b\n", 3, "routes must be a list"),
    ("route not a mapping", "version: 1\nroutes:\n  - /a\n", 3, "routes[0] must be a mapping"),
    (
        "upstreams not a mapping",
        "version: 1\nupstreams: [a]\nroutes: []\n",
        2,
        "upstreams must be a mapping",
    ),
    (
        "unknown key in an upstream",
        upstream_file(T, "retries: 3"),
        5,
        "upstreams.up: unknown key 'retries'",
    ),
    (
        "duplicate key in an upstream",
        upstream_file(T, 'targets: ["http://h:2"]'),
        5,
        "duplicate key 'targets'",
    ),
    (
        "duplicate upstream",
        "version: 1\nupstreams:\n"
        "  up: {targets: ['http://h:1']}\n"
        "  up: {targets: ['http://h:2']}\n"
        "routes: []\n",
        4,
        "duplicate upstream 'up'",
    ),
    ("missing targets", upstream_file("timeout: 1s"), 4, "upstreams.up: missing 'targets'"),
    ("empty targets", upstream_file("targets: []"), 4, "targets must not be empty"),
    ("ftp target", upstream_file('targets: ["ftp://h:21"]'), 4, "must look like http://host:port"),
    (
        "target without scheme",
        upstream_file('targets: ["127.0.0.1:8001"]'),
        4,
        "must look like http://host:port",
    ),
    (
        "target with a path",
        upstream_file('targets: ["http://h:1/api"]'),
        4,
        "scheme://host:port and nothing more",
    ),
    (
        "target with a query",
        upstream_file('targets: ["http://h:1?x=1"]'),
        4,
        "scheme://host:port and nothing more",
    ),
    (
        "target with user info",
        upstream_file('targets: ["http://u:p@h:1"]'),
        4,
        "scheme://host:port and nothing more",
    ),
    ("target with a bad port", upstream_file('targets: ["http://h:99999"]'), 4, "is not a URL"),
    (
        "second target bad",
        upstream_file("targets:", '  - "http://h:1"', '  - "gopher://h:2"'),
        6,
        "targets[1]",
    ),
    ("bad duration", upstream_file(T, "timeout: 30 seconds"), 5, "is not a duration"),
    ("zero duration", upstream_file(T, "connect_timeout: 0s"), 5, "positive, finite duration"),
    ("negative max_fails", upstream_file(T, "max_fails: -1"), 5, "integer of at least 0"),
    ("boolean keepalive", upstream_file(T, "keepalive: true"), 5, "integer of at least 0"),
    ("unknown key in a route", route_file(*B, "atuh: jwt"), 11, "routes[1]: unknown key 'atuh'"),
    ("duplicate key in a route", route_file(*B, "auth: jwt"), 11, "duplicate key 'auth'"),
    ("duplicate route name", HEAD + R + R.replace("/a", "/other"), 7, "duplicate route name 'a'"),
    ("missing name", HEAD + "  - {path: /a, upstream: up, auth: none}\n", 6, "missing 'name'"),
    (
        "name of the gateway's own",
        HEAD + "  - {name: '@live', path: /a, upstream: up, auth: none}\n",
        6,
        "'@live' may not begin with @",
    ),
    ("missing path", route_file("upstream: up", "auth: none"), 7, "missing 'path'"),
    ("missing upstream", route_file("path: /b", "auth: none"), 7, "missing 'upstream'"),
    ("missing auth", route_file("path: /b", "upstream: up"), 7, "missing 'auth'"),
    (
        "empty name",
        HEAD + "  - {name: '', path: /a, upstream: up, auth: none}\n",
        6,
        "name must be a non-empty string",
    ),
    (
        "unknown upstream",
        HEAD + "  - {name: a, path: /a, upstream: nope, auth: none}\n",
        6,
        "unknown upstream 'nope'",
    ),
    (
        "an upstream named like the built-in one",
        "version: 1\nupstreams:\n  auth_core: {targets: ['http://127.0.0.1:1']}\nroutes: []\n",
        3,
        "'auth_core' is the built-in upstream",
    ),
    (
        "an upstream named like forwardAuth's audience",
        "version: 1\nupstreams:\n  forward_auth: {targets: ['http://127.0.0.1:1']}\nroutes: []\n",
        3,
        "'forward_auth' is forwardAuth's audience",
    ),
    (
        "an upstream name with a comma (it is written into X-Gateway-Signature)",
        "version: 1\nupstreams:\n  'a,sig=x': {targets: ['http://127.0.0.1:1']}\nroutes: []\n",
        3,
        "use 1-64 of A-Z a-z 0-9 . _ -",
    ),
    (
        "an upstream name with a space",
        "version: 1\nupstreams:\n  'my api': {targets: ['http://127.0.0.1:1']}\nroutes: []\n",
        3,
        "use 1-64 of A-Z a-z 0-9 . _ -",
    ),
    (
        "an upstream name of 65 characters",
        f"version: 1\nupstreams:\n  {'u' * 65}: {{targets: ['http://127.0.0.1:1']}}\nroutes: []\n",
        3,
        "use 1-64 of A-Z a-z 0-9 . _ -",
    ),
    ("path with trailing slash", route_file("path: /b/", "upstream: up", "auth: none"), 8, CANON),
    ("path with repeated slash", route_file("path: /a//b", "upstream: up", "auth: none"), 8, CANON),
    ("path with dot-dot", route_file("path: /a/../b", "upstream: up", "auth: none"), 8, CANON),
    ("path with dot", route_file("path: /a/./b", "upstream: up", "auth: none"), 8, CANON),
    ("relative path", route_file("path: a", "upstream: up", "auth: none"), 8, CANON),
    (
        "path with unreserved escape",
        route_file("path: /%61", "upstream: up", "auth: none"),
        8,
        CANON,
    ),
    (
        "path with lower-case escape",
        route_file("path: /a%3f", "upstream: up", "auth: none"),
        8,
        CANON,
    ),
    ("path with %2F", route_file("path: /a%2Fb", "upstream: up", "auth: none"), 8, CANON),
    ("path with ..;", route_file("path: /a/..;/b", "upstream: up", "auth: none"), 8, CANON),
    (
        "path that is a number",
        route_file("path: 12", "upstream: up", "auth: none"),
        8,
        "path must be a non-empty string",
    ),
    ("bad method", route_file(*B, "methods: [GET, FETCH]"), 11, "'FETCH' is not an HTTP method"),
    ("empty methods", route_file(*B, "methods: []"), 11, "must not be empty"),
    ("methods not a list", route_file(*B, "methods: GET"), 11, "methods must be a list"),
    (
        "same path, no methods",
        HEAD + R + R.replace("name: a", "name: b"),
        7,
        "same path, host and methods as route 'a' at line 6",
    ),
    (
        "same path, overlapping methods",
        HEAD
        + "  - {name: a, path: /a, upstream: up, auth: none, methods: [GET, POST]}\n"
        + "  - {name: b, path: /a, upstream: up, auth: none, methods: [post]}\n",
        7,
        "same path, host and methods",
    ),
    (
        "same path, one route with every method",
        HEAD
        + "  - {name: a, path: /a, upstream: up, auth: none, methods: [GET]}\n"
        + "  - {name: b, path: /a, upstream: up, auth: none}\n",
        7,
        "same path, host and methods",
    ),
    (
        "same path and host, case differs",
        HEAD
        + "  - {name: a, path: /a, upstream: up, auth: none, host: A.example.com}\n"
        + "  - {name: b, path: /a, upstream: up, auth: none, host: a.EXAMPLE.com}\n",
        7,
        "same path, host and methods",
    ),
    (
        "unknown auth",
        route_file(*B[:2], "auth: basic"),
        10,
        "'basic' is not one of none | jwt | api_key",
    ),
    ("upper-case auth", route_file(*B[:2], "auth: NONE"), 10, "is not one of"),
    ("empty auth", route_file(*B[:2], "auth:"), 10, "auth must be a non-empty string"),
    (
        "rate_limit with an unknown key",
        route_file(*B, "rate_limit: {key: planet, limit: 100, per: 1m}"),
        11,
        "'planet' is not one of user | tenant | credential | ip",
    ),
    (
        "rate_limit without per",
        route_file(*B, "rate_limit: {key: user, limit: 100}"),
        11,
        "missing 'per'",
    ),
    (
        "rate_limit of zero",
        route_file(*B, "rate_limit: {key: user, limit: 0, per: 1m}"),
        11,
        "limit must be an integer of at least 1",
    ),
    (
        "rate_limit with a bad period",
        route_file(*B, "rate_limit: {key: user, limit: 5, per: often}"),
        11,
        "is not a duration",
    ),
    (
        "rate_limit with an unknown field",
        route_file(*B, "rate_limit: {key: user, limit: 5, per: 1s, burst: 9}"),
        11,
        "unknown key 'burst'",
    ),
    (
        "rate_limit twice the same",
        route_file(*B, "rate_limit: [{key: ip, limit: 5, per: 1s}, {key: ip, limit: 5, per: 1s}]"),
        11,
        "the same limit twice",
    ),
    ("rate_limit empty list", route_file(*B, "rate_limit: []"), 11, "one to 4 limits"),
    ("cors without origins", route_file(*B, "cors: {credentials: true}"), 11, "missing 'origins'"),
    ("cors with no origin", route_file(*B, "cors: {origins: []}"), 11, "must not be empty"),
    (
        "cors with a bad origin",
        route_file(*B, "cors: {origins: ['x.org']}"),
        11,
        "must be an origin",
    ),
    (
        "cors with a bad method",
        route_file(*B, "cors: {origins: ['https://x.org'], methods: [FETCH]}"),
        11,
        "'FETCH' is not an HTTP method",
    ),
    (
        "cors with a bad header",
        route_file(*B, "cors: {origins: ['https://x.org'], headers: ['a b']}"),
        11,
        "is not a header name",
    ),
    (
        "cors with an unknown key",
        route_file(*B, "cors: {origins: ['https://x.org'], allow_all: true}"),
        11,
        "unknown key 'allow_all'",
    ),
    (
        "roles with auth none",
        route_file(*B, "roles: [user]"),
        11,
        "a route with auth: none has no roles",
    ),
    (
        "websocket to the built-in upstream",
        route_file("path: /b", "upstream: auth_core", "auth: none", "websocket: true"),
        11,
        "the built-in upstream takes no websockets",
    ),
    ("websocket not a boolean", route_file(*B, "websocket: yes please"), 11, "true or false"),
    (
        "strip_prefix not a boolean",
        route_file(*B, "strip_prefix: maybe"),
        11,
        "strip_prefix must be true or false",
    ),
    ("bad route timeout", route_file(*B, "timeout: soon"), 11, "is not a duration"),
    ("NaN timeout", route_file(*B, "timeout: .nan"), 11, "timeout"),
    ("infinite timeout", upstream_file(T, "timeout: .inf"), 5, "timeout"),
    ("bad size", route_file(*B, "max_body: 10 potatoes"), 11, "is not a size"),
    ("zero size", route_file(*B, "max_body: 0"), 11, "positive size"),
    ("host with a space", route_file(*B, "host: 'exa mple.com'"), 11, "must be a host name"),
    ("host with a port", route_file(*B, "host: 'example.com:8080'"), 11, "must be a host name"),
    (
        "host wildcard in the middle",
        route_file(*B, "host: 'a.*.example.com'"),
        11,
        "must be a host name",
    ),
    (
        "bad origin",
        "version: 1\norigins: ['app.example.com']\nroutes: []\n",
        2,
        "must be an origin",
    ),
    (
        "origin with a path",
        "version: 1\norigins:\n  - https://a.org/x\nroutes: []\n",
        3,
        "must be an origin",
    ),
    (
        "origin with a query",
        "version: 1\norigins: ['https://a.org?x']\nroutes: []\n",
        2,
        "must be an origin",
    ),
    (
        "origin with user info",
        "version: 1\norigins: ['https://u@a.org']\nroutes: []\n",
        2,
        "must be an origin",
    ),
    (
        "bad metrics CIDR",
        "version: 1\nroutes: []\nmetrics:\n  allow: ['10.0.0.0/8', '10.0.0.300']\n",
        4,
        "'10.0.0.300' is not an IP address or CIDR",
    ),
    (
        "unknown key in metrics",
        "version: 1\nroutes: []\nmetrics:\n  deny: []\n",
        4,
        "metrics: unknown key 'deny'",
    ),
    (
        "forward_credentials not a boolean",
        route_file("path: /b", "upstream: up", "auth: jwt", "forward_credentials: 'yes'"),
        11,
        "forward_credentials must be true or false",
    ),
    (
        "forward_credentials on auth: none",
        route_file(*B, "forward_credentials: true"),
        11,
        "forward_credentials: only for a route that authenticates",
    ),
    (
        "forward_credentials to the built-in upstream",
        route_file("path: /b", "upstream: auth_core", "auth: jwt", "forward_credentials: true"),
        11,
        "the built-in upstream has no hop",
    ),
    (
        "browser not a boolean",
        route_file("path: /b", "upstream: up", "auth: jwt", "browser: 1"),
        11,
        "browser must be true or false",
    ),
    (
        "browser on auth: none",
        route_file(*B, "browser: true"),
        11,
        "browser: only for a route with auth: jwt or any",
    ),
    (
        "browser on auth: api_key",
        route_file("path: /b", "upstream: up", "auth: api_key", "browser: true"),
        11,
        "browser: only for a route with auth: jwt or any",
    ),
    (
        "browser to the built-in upstream",
        route_file("path: /b", "upstream: auth_core", "auth: jwt", "browser: true"),
        11,
        "the built-in upstream reads bearer tokens",
    ),
    (
        "underscores_in_headers not a boolean",
        route_file(*B, "underscores_in_headers: 1"),
        11,
        "underscores_in_headers must be true or false",
    ),
    (
        "top-level underscores_in_headers not a boolean",
        "version: 1\nunderscores_in_headers: on please\nroutes: []\n",
        2,
        "underscores_in_headers must be true or false",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [pytest.param(*case[1:4], id=case[0], marks=case[4:]) for case in INVALID],
)
def test_invalid_file(text: str, line: int, fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_route_table(text.encode(), "conf/routes.yaml")
    error = caught.value
    assert (error.line, fragment in error.reason) == (line, True), error.reason
    assert error.source == "conf/routes.yaml"
    assert str(error) == f"conf/routes.yaml:{line}: {error.reason}"


def test_same_path_on_other_hosts_or_methods_is_fine() -> None:
    table = parse_route_table(
        HEAD
        + "  - {name: a, path: /a, upstream: up, auth: none, methods: [GET]}\n"
        + "  - {name: b, path: /a, upstream: up, auth: none, methods: [POST, DELETE]}\n"
        + "  - {name: c, path: /a, upstream: up, auth: none, host: a.example.com}\n"
        + "  - {name: d, path: /a, upstream: up, auth: none, host: '*.example.com'}\n"
    )
    assert [r.name for r in table.routes] == ["a", "b", "c", "d"]


def test_upstream_may_not_take_the_builtin_name() -> None:
    text = "version: 1\nupstreams:\n  auth_core: {targets: ['http://h:1']}\nroutes: []\n"
    with pytest.raises(SettingsError) as caught:
        parse_route_table(text, builtin_upstreams=("auth_core",))
    assert caught.value.line == 3
    assert "built-in upstream" in caught.value.reason
