"""Authenticate on its own, with the gateway's authenticators and a real auth core: who the
credential proves, the refusals of a missing or bad one, and the access_token that leaves the
query before anything else sees it (docs/routes.md, `auth` kinds; Forwarding)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from auth_core.errors import GatewayError
from auth_core.service import AuthCore, CallInfo
from gateway.pipeline.authenticate import Authenticate
from gateway.pipeline.authn.api_key import ApiKeyAuth
from gateway.pipeline.authn.base import Authenticator
from gateway.pipeline.authn.first_match import any_credential
from gateway.pipeline.authn.jwt import JwtAuth
from gateway.pipeline.authn.pat import PatAuth
from gateway.pipeline.authn.service import ServiceAuth
from gateway.routing.table import AuthKind
from tests.auth_core.helpers import PASSWORD
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import outcome, refusal_awaited, routed_exchange

CALL = CallInfo(ip="203.0.113.7", request_id="req-authn")


def stage(core: AuthCore) -> Authenticate:
    kinds: Mapping[AuthKind, Authenticator] = {
        AuthKind.JWT: JwtAuth(core),
        AuthKind.API_KEY: ApiKeyAuth(core),
        AuthKind.PAT: PatAuth(core),
        AuthKind.SERVICE: ServiceAuth(core),
        AuthKind.ANY: any_credential(core),
    }
    return Authenticate(kinds)


async def access_token(core: AuthCore) -> tuple[str, str]:
    """A signed-in user's id and access token."""
    user = await core.accounts.create("ada@example.com", PASSWORD, verified=True)
    pair = await core.sessions.login("ada@example.com", PASSWORD, CALL)
    return user.id, pair.access_token


async def test_a_valid_access_token_proves_its_user(core: AuthCore) -> None:
    user_id, token = await access_token(core)
    exchange = routed_exchange(request("GET", "/app", f"Authorization: Bearer {token}"), ROUTES)
    assert await outcome(stage(core)(exchange)) is None
    assert exchange.auth_method == "jwt"
    assert exchange.principal is not None
    assert exchange.principal.user_id == user_id


REFUSED = [
    # (description, route, headers, status, code)
    ("jwt: no credential", "/app", [], 401, "missing_credentials"),
    ("jwt: not a token", "/app", ["Authorization: Bearer nonsense"], 401, "invalid_token"),
    (
        "jwt: another scheme",
        "/app",
        ["Authorization: Basic dXNlcjpwYXNz"],
        401,
        "missing_credentials",
    ),
    ("api_key: no credential", "/partner", [], 401, "missing_credentials"),
    ("api_key: not a key", "/partner", ["X-API-Key: gwk_nonsense"], 401, "invalid_api_key"),
    ("pat: a JWT is no PAT", "/tokens", ["Authorization: Bearer a.b.c"], 401, "invalid_token"),
    ("any: not a token", "/either", ["Authorization: Bearer nonsense"], 401, "invalid_token"),
]


@pytest.mark.parametrize(
    ("target", "headers", "status", "code"),
    [c[1:] for c in REFUSED],
    ids=[c[0] for c in REFUSED],
)
async def test_refusals(
    core: AuthCore, target: str, headers: list[str], status: int, code: str
) -> None:
    exchange = routed_exchange(request("GET", target, *headers), ROUTES)
    refused = await refusal_awaited(lambda: stage(core)(exchange))
    assert (refused.status, refused.code) == (status, code)


BEARER_JWT = "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln"
MISSING = [
    # (description, route, headers, the 401 missing_credentials' detail)
    ("jwt: nothing", "/app", [], "an access token is needed (Authorization: Bearer ...)"),
    ("api_key: nothing", "/partner", [], "an API key is needed (X-API-Key)"),
    ("api_key: a JWT", "/partner", [BEARER_JWT], "an API key is needed (X-API-Key)"),
    (
        "pat: nothing",
        "/tokens",
        [],
        "a personal access token is needed (Authorization: Bearer gwp_...)",
    ),
    (
        "service: a bearer token",
        "/internal",
        [BEARER_JWT],
        "a service token is needed (Authorization: Service gws_...)",
    ),
    (
        "any: nothing",
        "/either",
        [],
        "a credential is needed (Authorization: Bearer ..., or X-API-Key)",
    ),
    (
        "any: a service token",
        "/either",
        ["Authorization: Service gws_x"],
        "a credential is needed (Authorization: Bearer ..., or X-API-Key)",
    ),
]


@pytest.mark.parametrize(
    ("target", "headers", "detail"), [c[1:] for c in MISSING], ids=[c[0] for c in MISSING]
)
def test_a_request_without_the_kind_of_credential_is_missing_it(
    core: AuthCore, target: str, headers: list[str], detail: str
) -> None:
    """No authenticator responsible: 401 missing_credentials saying what the route wants."""
    exchange = routed_exchange(request("GET", target, *headers), ROUTES)
    with pytest.raises(GatewayError) as refused:
        stage(core)(exchange)
    assert (refused.value.status, refused.value.code) == (401, "missing_credentials")
    assert refused.value.detail == detail


def test_a_missing_key_counts_among_the_keys_refusals(core: AuthCore) -> None:
    """gateway_api_key_validations_total counts a refusal whose auth method is api_key
    (docs/operations/observability.md), a missing key on an api_key route too."""
    exchange = routed_exchange(request("GET", "/partner"), ROUTES)
    with pytest.raises(GatewayError):
        stage(core)(exchange)
    assert exchange.auth_method == "api_key"


async def test_an_api_key_proves_its_tenant_from_an_allowed_address_only(core: AuthCore) -> None:
    tenant = await core.tenants.create("Acme", [], ["203.0.113.0/24"], None, CALL)
    _record, key = await core.keys.create(tenant.id, actor_id=None, call=CALL)
    raw = request("GET", "/partner", f"X-API-Key: {key}")
    exchange = routed_exchange(raw, ROUTES, peer="203.0.113.7")
    assert await outcome(stage(core)(exchange)) is None
    assert exchange.auth_method == "api_key"
    assert exchange.principal is not None
    assert exchange.principal.tenant_id == tenant.id

    elsewhere = routed_exchange(raw, ROUTES, peer="198.51.100.7")
    refused = await refusal_awaited(lambda: stage(core)(elsewhere))
    assert (refused.status, refused.code) == (403, "ip_not_allowed")


async def test_the_access_token_leaves_the_query_unless_credentials_go_on(core: AuthCore) -> None:
    _user_id, token = await access_token(core)
    bearer = f"Authorization: Bearer {token}"
    withheld = routed_exchange(request("GET", "/app?a=1&access_token=T", bearer), ROUTES)
    assert await outcome(stage(core)(withheld)) is None
    assert withheld.query == "?a=1"
    forwarded = routed_exchange(request("GET", "/passing?a=1&access_token=T", bearer), ROUTES)
    assert await outcome(stage(core)(forwarded)) is None
    assert forwarded.query == "?a=1&access_token=T"


def test_a_route_without_auth_is_left_out() -> None:
    exchange = routed_exchange(request("GET", "/v1/items"), ROUTES)
    assert exchange.route is not None
    assert not Authenticate({}).applies(exchange.route)
