"""Preflight on its own: CORS preflights answered by the gateway from a route's `cors`, or on
`jwt` routes from the top-level and the tenants' origins (docs/routes.md, CORS)."""

from __future__ import annotations

from auth_core.service import AuthCore, CallInfo
from gateway.http.response import Response
from gateway.pipeline.preflight import Preflight
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import outcome, refusal, refusal_awaited, route_table, routed_exchange

ASK_PUT = "Access-Control-Request-Method: PUT"


def answer_headers(answer: Response | None) -> dict[str, str]:
    assert answer is not None
    assert answer.status == 204
    return {name.decode(): value.decode() for name, value in answer.headers}


def preflight(target: str, origin: str, *more: str) -> bytes:
    return request("OPTIONS", target, f"Origin: {origin}", ASK_PUT, *more)


async def test_a_route_cors_preflight_is_answered_from_the_policy(core: AuthCore) -> None:
    raw = preflight("/shared", "https://app.example.com", "Access-Control-Request-Headers: X-A")
    exchange = routed_exchange(raw, ROUTES)
    headers = answer_headers(await outcome(Preflight(core)(exchange)))
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert headers["Access-Control-Max-Age"] == "300"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Access-Control-Allow-Headers"] == "X-A"
    assert headers["X-Request-Id"] == "req-1"


async def test_a_route_cors_preflight_from_another_origin_is_403(core: AuthCore) -> None:
    exchange = routed_exchange(preflight("/shared", "https://evil.example.net"), ROUTES)
    refused = refusal(lambda: Preflight(core)(exchange))
    assert (refused.status, refused.code) == (403, "origin_not_allowed")


async def test_a_route_cors_answer_is_marked_for_its_origin_only(core: AuthCore) -> None:
    allowed = routed_exchange(request("GET", "/shared", "Origin: https://app.example.com"), ROUTES)
    assert Preflight(core)(allowed) is None
    assert dict(allowed.response_headers) == {
        b"Access-Control-Allow-Origin": b"https://app.example.com",
        b"Vary": b"Origin",
        b"Access-Control-Allow-Credentials": b"true",
        b"Access-Control-Expose-Headers": b"X-Request-Id",
    }
    other = routed_exchange(request("GET", "/shared", "Origin: https://evil.example.net"), ROUTES)
    assert Preflight(core)(other) is None
    assert not other.response_headers


async def test_a_jwt_route_answers_the_platform_origins(core: AuthCore) -> None:
    exchange = routed_exchange(preflight("/app", "https://platform.example.com"), ROUTES)
    headers = answer_headers(await outcome(Preflight(core)(exchange)))
    assert headers["Access-Control-Allow-Origin"] == "https://platform.example.com"
    assert headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST, PUT, PATCH, DELETE"
    assert headers["Access-Control-Max-Age"] == "600"


async def test_a_jwt_route_answers_a_tenants_origin_and_refuses_others(core: AuthCore) -> None:
    await core.tenants.create("Acme", ["https://acme.example.com"], [], None, CallInfo())
    exchange = routed_exchange(preflight("/app", "https://acme.example.com"), ROUTES)
    headers = answer_headers(await outcome(Preflight(core)(exchange)))
    assert headers["Access-Control-Allow-Origin"] == "https://acme.example.com"

    exchange = routed_exchange(preflight("/app", "https://evil.example.net"), ROUTES)
    refused = await refusal_awaited(lambda: Preflight(core)(exchange))
    assert (refused.status, refused.code) == (403, "origin_not_allowed")


async def test_what_is_not_a_preflight_goes_on(core: AuthCore) -> None:
    cases = [
        request("GET", "/app", "Origin: https://evil.example.net"),  # not OPTIONS
        request("OPTIONS", "/app", ASK_PUT),  # no Origin
        request("OPTIONS", "/app", "Origin: https://evil.example.net"),  # no method asked
    ]
    for raw in cases:
        assert Preflight(core)(routed_exchange(raw, ROUTES)) is None
    disabled = routed_exchange(preflight("/app", "https://evil.example.net"), ROUTES)
    assert Preflight(core, enabled=False)(disabled) is None


# The auth core's routes: CORS from the whitelists whatever the route's `auth` (a browser logs
# in before it holds a credential), credentials only with cookie sessions.
AUTH_CORE_ROUTES = """\
version: 1
upstreams: {}
routes:
  - {name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}
  - {name: sdk, path: /v1/sdk, upstream: auth_core, auth: api_key, methods: [POST]}
origins: ["https://platform.example.com"]
"""
PLATFORM = "https://platform.example.com"


async def test_an_auth_core_preflight_is_answered_for_a_listed_origin(core: AuthCore) -> None:
    for target in ("/api/v1/auth/login", "/v1/sdk/refresh"):
        exchange = routed_exchange(preflight(target, PLATFORM), AUTH_CORE_ROUTES)
        headers = answer_headers(await outcome(Preflight(core)(exchange)))
        assert headers["Access-Control-Allow-Origin"] == PLATFORM
        assert "Origin" in headers["Vary"]
        assert "Access-Control-Allow-Credentials" not in headers  # no cookie sessions


async def test_an_auth_core_route_allows_credentials_with_cookie_sessions(
    cookie_core: AuthCore,
) -> None:
    exchange = routed_exchange(preflight("/api/v1/auth/refresh", PLATFORM), AUTH_CORE_ROUTES)
    headers = answer_headers(await outcome(Preflight(cookie_core)(exchange)))
    assert headers["Access-Control-Allow-Credentials"] == "true"
    answered = routed_exchange(
        request("POST", "/api/v1/auth/refresh", f"Origin: {PLATFORM}"), AUTH_CORE_ROUTES
    )
    assert Preflight(cookie_core)(answered) is None
    assert list(answered.response_headers) == [
        (b"Vary", b"Origin"),
        (b"Access-Control-Allow-Origin", PLATFORM.encode()),
        (b"Access-Control-Allow-Credentials", b"true"),
    ]


async def test_an_auth_core_route_marks_nothing_but_vary_for_other_callers(
    cookie_core: AuthCore,
) -> None:
    foreign = "Origin: https://evil.example.net"
    for raw in (request("POST", "/api/v1/auth/login", foreign), request("GET", "/api/v1/auth/me")):
        exchange = routed_exchange(raw, AUTH_CORE_ROUTES)
        assert await outcome(Preflight(cookie_core)(exchange)) is None
        assert list(exchange.response_headers) == [(b"Vary", b"Origin")]
    exchange = routed_exchange(
        preflight("/api/v1/auth/login", "https://evil.example.net"), AUTH_CORE_ROUTES
    )
    refused = await refusal_awaited(lambda: Preflight(cookie_core)(exchange))
    assert (refused.status, refused.code) == (403, "origin_not_allowed")


async def test_an_auth_core_route_answers_a_tenants_origin(core: AuthCore) -> None:
    await core.tenants.create("Acme", ["https://acme.example.com"], [], None, CallInfo())
    exchange = routed_exchange(
        preflight("/api/v1/auth/login", "https://acme.example.com"), AUTH_CORE_ROUTES
    )
    headers = answer_headers(await outcome(Preflight(core)(exchange)))
    assert headers["Access-Control-Allow-Origin"] == "https://acme.example.com"


def test_an_auth_core_route_with_methods_takes_preflights_only_as_options() -> None:
    """The table's 405 path: OPTIONS still finds an auth_core route whose `methods` leave it
    out (the preflight stage answers it); other methods stay refused."""
    table = route_table(AUTH_CORE_ROUTES)
    assert table.match("/v1/sdk/refresh", "OPTIONS").name == "sdk"
    refused = refusal(lambda: table.match("/v1/sdk/refresh", "GET"))
    assert (refused.status, refused.code) == (405, "method_not_allowed")
