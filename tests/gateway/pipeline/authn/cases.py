"""What the authenticator tests share: one credential of every kind, issued by a real auth core,
and a table row's request put to an authenticator, its answer written as a short string."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from auth_core.errors import GatewayError
from auth_core.service import AuthCore, CallInfo
from gateway.pipeline.authn.base import Authenticator, NotResponsible
from tests.auth_core.helpers import PASSWORD
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import outcome, routed_exchange

CALL = CallInfo(ip="203.0.113.7", request_id="req-authn")
INSIDE = "203.0.113.7"  # on the tenant's IP whitelist
OUTSIDE = "198.51.100.7"


@dataclass(frozen=True)
class Issued:
    """One credential of each kind, and who each proves."""

    user_id: str
    jwt: str
    tenant_id: str
    key: str
    pat: str
    service_id: str
    service: str


async def issue(core: AuthCore) -> Issued:
    user = await core.accounts.create("ada@example.com", PASSWORD, verified=True)
    pair = await core.sessions.login("ada@example.com", PASSWORD, CALL)
    tenant = await core.tenants.create("Acme", [], ["203.0.113.0/24"], None, CALL)
    _key, key = await core.keys.create(tenant.id, actor_id=None, call=CALL)
    _pat, pat = await core.pats.create(user.id, {"name": "ci"}, CALL)
    service, secret = await core.service_tokens.create("billing", actor_id=None, call=CALL)
    return Issued(user.id, pair.access_token, tenant.id, key, pat, service.id, secret)


@dataclass(frozen=True)
class Case:
    """A row of an authenticator's table. `headers` and `expected` may name the issued
    credentials as `{jwt}`, `{key}`, `{user_id}`...; `expected` is "not responsible", the
    method and who it proved ("jwt: {user_id}"), or a refusal ("401 invalid_token")."""

    description: str
    headers: tuple[str, ...]
    expected: str
    ws_token: str | None = None  # a websocket's token, from its subprotocol or query
    peer: str = INSIDE


def ids(cases: list[Case]) -> list[str]:
    return [case.description for case in cases]


async def answer(authenticator: Authenticator, case: Case, issued: Issued) -> str:
    """What `authenticator` says to the request of `case`."""
    names = dataclasses.asdict(issued)
    headers = [line.format(**names) for line in case.headers]
    exchange = routed_exchange(request("GET", "/v1/items", *headers), ROUTES, peer=case.peer)
    if case.ws_token is not None:
        exchange.ws_token = case.ws_token.format(**names)
    try:
        result = authenticator.authenticate(exchange)
        if isinstance(result, NotResponsible):
            assert (exchange.auth_method, exchange.principal) == ("none", None)
            return "not responsible"
        assert await outcome(result) is None
    except GatewayError as exc:
        return f"{exc.status} {exc.code}"
    principal = exchange.principal
    assert principal is not None
    assert principal.method == exchange.auth_method
    who = principal.user_id or principal.tenant_id or principal.credential_id
    return f"{exchange.auth_method}: {who}"


def expected(case: Case, issued: Issued) -> str:
    return case.expected.format(**dataclasses.asdict(issued))
