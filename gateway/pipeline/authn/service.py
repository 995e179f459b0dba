"""`auth: service`: a service token, `Authorization: Service gws_...` (GATEWAY_SERVICE_SECRET is
none), the credential of internal services. A token seen before is checked from the auth
core's cache; only a miss waits for the database."""

from __future__ import annotations

from typing import Final

from auth_core.service import AuthCore
from gateway.pipeline.authn.base import (
    AUTHORIZATION,
    Authenticator,
    AuthnResult,
    NotResponsible,
    call_info,
    settle,
)
from gateway.pipeline.exchange import Exchange

_NOT_MINE: Final = NotResponsible("a service token is needed (Authorization: Service gws_...)")


def service_token(authorization: bytes | None) -> str | None:
    """The token of `Service <token>` (scheme in any case), or None."""
    if authorization is None or authorization[:8].lower() != b"service ":
        return None
    token = authorization[8:].strip()
    return token.decode("ascii", "replace") if token else None


class ServiceAuth(Authenticator):
    """Responsible for `Authorization: Service <token>`."""

    def __init__(self, core: AuthCore) -> None:
        self.core = core

    def authenticate(self, exchange: Exchange) -> AuthnResult:
        secret = service_token(exchange.request.header(AUTHORIZATION))
        if secret is None:
            return _NOT_MINE
        exchange.auth_method = "service"
        found = self.core.service_tokens.authenticate(secret, lambda: call_info(exchange))
        return settle(exchange, found)
