"""`auth: jwt`: an access token in `Authorization: Bearer`, checked by the co-located auth core
(signature, claims, revocation) without leaving the process. The product's hot path: one header
look-up and the auth core's validation cache."""

from __future__ import annotations

from typing import Final

from auth_core.service import AuthCore
from gateway.pipeline.authn.base import (
    AUTHORIZATION,
    Authenticator,
    AuthnResult,
    NotResponsible,
    bearer_token,
)
from gateway.pipeline.exchange import Exchange

_NOT_MINE: Final = NotResponsible("an access token is needed (Authorization: Bearer ...)")


class JwtAuth(Authenticator):
    """Responsible for any bearer token: one that is not an access token is refused as
    invalid_token, not passed on (under `auth: any` the kinds with a prefix are asked first,
    first_match.py)."""

    def __init__(self, core: AuthCore) -> None:
        self.core = core

    def authenticate(self, exchange: Exchange) -> AuthnResult:
        token = bearer_token(exchange.request.header(AUTHORIZATION)) or exchange.ws_token
        if token is None:
            return _NOT_MINE
        exchange.principal = self.core.authenticate_access_token(token)
        exchange.auth_method = "jwt"
        return None
