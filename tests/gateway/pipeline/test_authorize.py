"""Authorize on its own: the route's roles against the principal's, and a browser's Origin
against the tenant's (or the top-level) whitelist (docs/routes.md, `auth` kinds)."""

from __future__ import annotations

import pytest

from auth_core.models import Principal
from auth_core.service import AuthCore, CallInfo
from gateway.pipeline.authorize import Authorize
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import cases, outcome, refusal, refusal_awaited, routed_exchange

ROLES = [
    # (description, the principal's roles, allowed)
    ("one of the route's roles", ("ops",), True),
    ("the other one, among others", ("viewer", "admin"), True),
    ("none of them", ("viewer",), False),
    ("no roles at all", (), False),
]


@pytest.mark.parametrize(("roles", "allowed"), cases(ROLES))
async def test_roles(core: AuthCore, roles: tuple[str, ...], allowed: bool) -> None:
    exchange = routed_exchange(request("GET", "/admin"), ROUTES)
    exchange.principal = Principal("jwt", user_id="u1", roles=roles)
    if allowed:
        assert Authorize(core)(exchange) is None
    else:
        refused = refusal(lambda: Authorize(core)(exchange))
        assert (refused.status, refused.code) == (403, "insufficient_role")


async def test_no_principal_nothing_to_check(core: AuthCore) -> None:
    assert Authorize(core)(routed_exchange(request("GET", "/admin"), ROUTES)) is None


async def test_a_tenantless_user_is_held_to_the_top_level_origins(core: AuthCore) -> None:
    listed = routed_exchange(request("GET", "/app", "Origin: https://platform.example.com"), ROUTES)
    listed.principal = Principal("jwt", user_id="u1")
    assert Authorize(core)(listed) is None
    assert list(listed.response_headers) == [
        (b"Access-Control-Allow-Origin", b"https://platform.example.com"),
        (b"Vary", b"Origin"),
    ]
    other = routed_exchange(request("GET", "/app", "Origin: https://evil.example.net"), ROUTES)
    other.principal = Principal("jwt", user_id="u1")
    refused = refusal(lambda: Authorize(core)(other))
    assert (refused.status, refused.code) == (403, "origin_not_allowed")


async def test_a_tenants_user_is_held_to_the_tenants_origins(core: AuthCore) -> None:
    tenant = await core.tenants.create("Acme", ["https://acme.example.com"], [], None, CallInfo())
    listed = routed_exchange(request("GET", "/app", "Origin: https://acme.example.com"), ROUTES)
    listed.principal = Principal("jwt", user_id="u1", tenant_id=tenant.id)
    assert await outcome(Authorize(core)(listed)) is None
    assert (b"Access-Control-Allow-Origin", b"https://acme.example.com") in listed.response_headers
    # The platform's list is not the tenant's.
    other = routed_exchange(request("GET", "/app", "Origin: https://platform.example.com"), ROUTES)
    other.principal = Principal("jwt", user_id="u1", tenant_id=tenant.id)
    refused = await refusal_awaited(lambda: Authorize(core)(other))
    assert (refused.status, refused.code) == (403, "origin_not_allowed")


async def test_a_tenant_that_is_gone_accepts_no_origin(core: AuthCore) -> None:
    exchange = routed_exchange(request("GET", "/app", "Origin: https://acme.example.com"), ROUTES)
    exchange.principal = Principal("jwt", user_id="u1", tenant_id="no-such-tenant")
    refused = await refusal_awaited(lambda: Authorize(core)(exchange))
    assert (refused.status, refused.code) == (403, "origin_not_allowed")


@pytest.mark.parametrize("method", ["api_key", "pat", "service"])
async def test_only_jwt_callers_are_held_to_origins(core: AuthCore, method: str) -> None:
    exchange = routed_exchange(request("GET", "/app", "Origin: https://evil.example.net"), ROUTES)
    exchange.principal = Principal(method, user_id="u1")
    assert Authorize(core)(exchange) is None
    assert not exchange.response_headers


async def test_origins_unchecked_when_origin_validation_is_off(core: AuthCore) -> None:
    exchange = routed_exchange(request("GET", "/app", "Origin: https://evil.example.net"), ROUTES)
    exchange.principal = Principal("jwt", user_id="u1")
    assert Authorize(core, check_origins=False)(exchange) is None
