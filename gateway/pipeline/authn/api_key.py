"""`auth: api_key`: `X-API-Key: gwk_...`, or `Authorization: Bearer gwk_...`; the client address
(the one resolver's) must be on the tenant's IP whitelist and the key's own CIDR list. A key
seen before is checked from the auth core's cache; only a miss waits for the database."""

from __future__ import annotations

from typing import Final

from auth_core import credentials
from auth_core.errors import MissingCredentials
from auth_core.service import AuthCore
from gateway.pipeline.authn.base import (
    X_API_KEY,
    Authenticator,
    AuthnResult,
    NotResponsible,
    call_info,
    presented_token,
    settle,
)
from gateway.pipeline.exchange import Exchange

_PREFIX: Final = credentials.API_KEY_PREFIX
_NEEDED: Final = "an API key is needed (X-API-Key)"
_NOT_MINE: Final = NotResponsible(_NEEDED)


def api_key_of(exchange: Exchange) -> str | None:
    """The key of `X-API-Key`, else of `Authorization: Bearer gwk_...`."""
    value = exchange.request.header(X_API_KEY)
    if value is not None:
        text = value.strip().decode("ascii", "replace")
        return text or None
    token = presented_token(exchange)
    return token if token is not None and token.startswith(_PREFIX) else None


class ApiKeyAuth(Authenticator):
    """Responsible for a request with `X-API-Key` (whatever its value) or a bearer `gwk_` token."""

    def __init__(self, core: AuthCore) -> None:
        self.core = core

    def authenticate(self, exchange: Exchange) -> AuthnResult:
        value = exchange.request.header(X_API_KEY)
        if value is not None:
            key = value.strip().decode("ascii", "replace")
        else:
            token = presented_token(exchange)
            if token is None or not token.startswith(_PREFIX):
                return _NOT_MINE
            key = token
        exchange.auth_method = "api_key"
        if not key:  # `X-API-Key:` sent empty: this kind, chosen by its header, and no key
            raise MissingCredentials(_NEEDED)
        found = self.core.keys.authenticate(key, exchange.client_ip, lambda: call_info(exchange))
        return settle(exchange, found)
