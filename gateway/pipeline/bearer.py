"""`auth: jwt`: an access token in `Authorization: Bearer`, checked by the co-located auth
core (signature, claims, revocation) without leaving the process."""

from __future__ import annotations

from auth_core.errors import MissingCredentials
from auth_core.service import AuthCore
from gateway.pipeline.authenticate import Authenticator
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import StageResult


def bearer_token(authorization: bytes | None) -> str | None:
    """The token of `Bearer <token>` (scheme in any case), or None."""
    if authorization is None or len(authorization) < 8:
        return None
    if authorization[:7].lower() != b"bearer ":
        return None
    token = authorization[7:].strip()
    return token.decode("ascii", "replace") if token else None


class JwtBearer(Authenticator):
    def __init__(self, core: AuthCore) -> None:
        self.core = core

    def authenticate(self, exchange: Exchange) -> StageResult:
        token = bearer_token(exchange.request.header(b"authorization")) or exchange.ws_token
        if token is None:
            raise MissingCredentials("an access token is needed (Authorization: Bearer ...)")
        exchange.principal = self.core.authenticate_access_token(token)
        exchange.auth_method = "jwt"
        return None
