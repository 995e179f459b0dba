"""`auth: api_key`, `pat`, `service` and `any`: the credentials besides end users' JWTs, each
checked by the co-located auth core without leaving the process (README: The route table).

- api_key: `X-API-Key: gwk_...`, or `Authorization: Bearer gwk_...`; the client address
  (the one resolver's) must be on the tenant's IP whitelist and the key's own CIDR list.
- pat: `Authorization: Bearer gwp_...`.
- service: `Authorization: Service gws_...` (a service token; GATEWAY_SERVICE_SECRET is none).
- any: whichever of JWT, API key or PAT the request carries.

A key, PAT or service token seen before is checked synchronously from the auth core's cache;
only a miss waits for the database.
"""

from __future__ import annotations

from collections.abc import Awaitable

from auth_core.errors import MissingCredentials
from auth_core.models import Principal
from auth_core.service import AuthCore, CallInfo
from gateway import headers as h
from gateway.pipeline.authenticate import Authenticator
from gateway.pipeline.bearer import JwtBearer, bearer_token
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import StageResult

_KEY_PREFIX = "gwk_"
_PAT_PREFIX = "gwp_"


def call_info(exchange: Exchange) -> CallInfo:
    request = exchange.request
    return CallInfo(
        ip=exchange.client_ip,
        user_agent=request.header_text(b"user-agent"),
        request_id=exchange.request_id,
    )


def api_key_of(exchange: Exchange) -> str | None:
    """The key of `X-API-Key`, else of `Authorization: Bearer gwk_...`."""
    request = exchange.request
    value = request.header(h.B_X_API_KEY)
    if value is not None:
        text = value.strip().decode("ascii", "replace")
        return text or None
    token = bearer_token(request.header(b"authorization")) or exchange.ws_token
    return token if token is not None and token.startswith(_KEY_PREFIX) else None


def _settle(exchange: Exchange, found: Principal | Awaitable[Principal]) -> StageResult:
    if isinstance(found, Principal):
        exchange.principal = found
        return None
    return _wait(exchange, found)


async def _wait(exchange: Exchange, pending: Awaitable[Principal]) -> None:
    exchange.principal = await pending


class ApiKeyAuth(Authenticator):
    def __init__(self, core: AuthCore) -> None:
        self.core = core

    def authenticate(self, exchange: Exchange) -> StageResult:
        exchange.auth_method = "api_key"
        key = api_key_of(exchange)
        if key is None:
            raise MissingCredentials("an API key is needed (X-API-Key)")
        found = self.core.keys.authenticate(key, exchange.client_ip, lambda: call_info(exchange))
        return _settle(exchange, found)


class PatAuth(Authenticator):
    def __init__(self, core: AuthCore) -> None:
        self.core = core

    def authenticate(self, exchange: Exchange) -> StageResult:
        exchange.auth_method = "pat"
        token = bearer_token(exchange.request.header(b"authorization")) or exchange.ws_token
        if token is None:
            raise MissingCredentials(
                "a personal access token is needed (Authorization: Bearer gwp_...)"
            )
        return _settle(exchange, self.core.pats.authenticate(token, lambda: call_info(exchange)))


class ServiceAuth(Authenticator):
    def __init__(self, core: AuthCore) -> None:
        self.core = core

    def authenticate(self, exchange: Exchange) -> StageResult:
        exchange.auth_method = "service"
        value = exchange.request.header(b"authorization")
        if value is None or value[:8].lower() != b"service " or not value[8:].strip():
            raise MissingCredentials("a service token is needed (Authorization: Service gws_...)")
        secret = value[8:].strip().decode("ascii", "replace")
        found = self.core.service_tokens.authenticate(secret, lambda: call_info(exchange))
        return _settle(exchange, found)


class AnyCredential(Authenticator):
    """The credential the request carries decides: an API key, a PAT, or a JWT."""

    def __init__(self, core: AuthCore) -> None:
        self.keys = ApiKeyAuth(core)
        self.pats = PatAuth(core)
        self.jwt = JwtBearer(core)

    def authenticate(self, exchange: Exchange) -> StageResult:
        request = exchange.request
        if request.header(h.B_X_API_KEY) is not None:
            return self.keys.authenticate(exchange)
        token = bearer_token(request.header(b"authorization")) or exchange.ws_token
        if token is not None and token.startswith(_KEY_PREFIX):
            return self.keys.authenticate(exchange)
        if token is not None and token.startswith(_PAT_PREFIX):
            return self.pats.authenticate(exchange)
        if token is None:
            raise MissingCredentials(
                "a credential is needed (Authorization: Bearer ..., or X-API-Key)"
            )
        return self.jwt.authenticate(exchange)
