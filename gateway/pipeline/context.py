"""The context headers upstreams receive (SPEC section 7), signed so that they can trust them
without validating anything again (gateway.context verifies)."""

from __future__ import annotations

from auth_core.service import AuthCore
from gateway.context import sign
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult


def context_values(exchange: Exchange) -> dict[str, str]:
    """The context headers (lower-case names) for the exchange's principal."""
    values = {"x-request-id": exchange.request_id, "x-auth-method": exchange.auth_method}
    principal = exchange.principal
    if principal is not None:
        if principal.user_id is not None:
            values["x-user-id"] = principal.user_id
            values["x-user-roles"] = ",".join(principal.roles)
            if principal.email:
                values["x-user-email"] = principal.email
        if principal.tenant_id is not None:
            values["x-tenant-id"] = principal.tenant_id
        if principal.session_id is not None:
            values["x-session-id"] = principal.session_id
        if principal.credential_id is not None:
            values["x-credential-id"] = principal.credential_id
    return values


class SetContext(Stage):
    """Adds X-Auth-Method, the identity headers, X-Gateway-Timestamp and -Signature."""

    def __init__(self, core: AuthCore) -> None:
        self.core = core

    def __call__(self, exchange: Exchange) -> StageResult:
        values = context_values(exchange)
        keyring = self.core.service_keyring
        assert keyring is not None, "the auth core is started before requests are served"
        kid, secret = keyring.current
        path = exchange.upstream_path + exchange.query
        stamp, signature = sign(kid, secret, exchange.request.method, path, values)
        lines = exchange.context_headers
        for name, value in values.items():
            if name != "x-request-id":  # the forwarder writes that one
                lines.append(_NAMES[name] + value.encode() + b"\r\n")
        lines.append(b"X-Gateway-Timestamp: " + stamp.encode() + b"\r\n")
        lines.append(b"X-Gateway-Signature: " + signature.encode() + b"\r\n")
        return None


_NAMES = {
    "x-auth-method": b"X-Auth-Method: ",
    "x-user-id": b"X-User-Id: ",
    "x-user-email": b"X-User-Email: ",
    "x-user-roles": b"X-User-Roles: ",
    "x-tenant-id": b"X-Tenant-Id: ",
    "x-session-id": b"X-Session-Id: ",
    "x-credential-id": b"X-Credential-Id: ",
}
