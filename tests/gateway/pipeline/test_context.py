"""SetContext on its own: the context headers an upstream receives, signed for that upstream
over the method and the path (with query) it receives (docs/upstream-services.md).
Checked with gateway.context.verify and the key `gateway context-key api` would give."""

from __future__ import annotations

import pytest

from auth_core.models import Principal
from auth_core.service import AuthCore
from gateway.context import Context, ContextError, derive_keys, verify
from gateway.pipeline.context import SetContext
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import cases, routed_exchange

PRINCIPALS = [
    # (description, auth method, principal, the identity headers it gives)
    ("anonymous", "none", None, {}),
    (
        "a user",
        "jwt",
        Principal("jwt", user_id="usr_1", email="ada@example.com", roles=("user", "admin")),
        {
            "x-user-id": "usr_1",
            "x-user-roles": "user,admin",
            "x-user-email": "ada@example.com",
            "x-user-email-verified": "false",
        },
    ),
    (
        "an API key of a tenant",
        "api_key",
        Principal("api_key", tenant_id="ten_1", credential_id="key_1"),
        {"x-tenant-id": "ten_1", "x-credential-id": "key_1"},
    ),
]


def sent_headers(exchange_lines: list[bytes], request_id: str) -> dict[str, str]:
    """The context headers as the upstream reads them, X-Request-Id with them."""
    headers = {"X-Request-Id": request_id}
    for line in b"".join(exchange_lines).decode().splitlines():
        name, _, value = line.partition(": ")
        headers[name] = value
    return headers


def verified(core: AuthCore, method: str, path: str, headers: dict[str, str]) -> Context:
    keyring = core.service_keyring
    assert keyring is not None
    return verify(derive_keys(keyring.keys, "api"), "api", method, path, headers)


@pytest.mark.parametrize(("method", "principal", "identity"), cases(PRINCIPALS))
async def test_the_context_is_signed_for_the_upstream(
    core: AuthCore, method: str, principal: Principal | None, identity: dict[str, str]
) -> None:
    exchange = routed_exchange(request("POST", "/svc/notes?draft=1"), ROUTES)
    exchange.auth_method = method
    exchange.principal = principal
    exchange.query = "?draft=1"  # as ParseTarget would leave it (routed_exchange does not)
    assert SetContext(core)(exchange) is None
    headers = sent_headers(exchange.context_headers, "req-1")
    lowered = {name.lower(): value for name, value in headers.items()}
    assert lowered["x-auth-method"] == method
    assert {name: lowered[name] for name in identity} == identity
    assert not {"x-user-id", "x-tenant-id", "x-credential-id"} - set(identity) & set(lowered)
    # Signed over what the upstream receives: strip_prefix's path, the query as sent.
    context = verified(core, "POST", "/notes?draft=1", headers)
    assert (context.auth_method, context.request_id) == (method, "req-1")
    with pytest.raises(ContextError):
        verified(core, "POST", "/svc/notes?draft=1", headers)
    with pytest.raises(ContextError):
        verified(core, "GET", "/notes?draft=1", headers)


async def test_a_changed_value_breaks_the_signature(core: AuthCore) -> None:
    exchange = routed_exchange(request("GET", "/svc/a"), ROUTES)
    exchange.auth_method = "jwt"
    exchange.principal = Principal("jwt", user_id="usr_1", roles=("user",))
    assert SetContext(core)(exchange) is None
    headers = sent_headers(exchange.context_headers, "req-1")
    assert verified(core, "GET", "/a", headers).user_id == "usr_1"
    with pytest.raises(ContextError):
        verified(core, "GET", "/a", {**headers, "X-User-Roles": "user,admin"})
