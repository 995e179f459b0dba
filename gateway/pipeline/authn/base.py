"""What every authenticator shares: the interface, its "not responsible" answer, and the small
helpers the kinds have in common (the bearer token, the call described for the audit log, a
principal found at once or after waiting)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable
from typing import Final, final

from mypy_extensions import mypyc_attr

from auth_core import headers as h
from auth_core.models import Principal
from auth_core.service import CallInfo
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import StageResult

# The header names the authenticators read, bound once as Finals of this module: in the
# compiled build a module's own Final is read directly, where `h.NAME` of a module that is not
# compiled was an attribute look-up at each use (about 40 ns a request on the jwt route).
AUTHORIZATION: Final = h.B_AUTHORIZATION
X_API_KEY: Final = h.B_X_API_KEY


@final
class NotResponsible:
    """An authenticator's answer to a request that carries no credential of its kind.

    A value, not an exception: on an `auth: jwt` route, the product's hot path, raising and
    catching would cost more than the check itself. `needed` says what the request lacks: the
    detail of the 401 missing_credentials when no other authenticator is asked."""

    def __init__(self, needed: str) -> None:
        self.needed = needed


# What `Authenticator.authenticate` returns: None (proved), an awaitable of None (proving takes
# a look-up), or NotResponsible. A Response is allowed, as for any stage, though none gives one.
AuthnResult = StageResult | NotResponsible


# An extension point, like Stage: plain Python subclasses work in the compiled build too.
@mypyc_attr(allow_interpreted_subclasses=True)
class Authenticator(ABC):
    """Checks one kind of credential."""

    @abstractmethod
    def authenticate(self, exchange: Exchange) -> AuthnResult:
        """Not responsible, when the request carries no credential of this kind; else set
        `exchange.auth_method` and the principal, or raise a 401/403 GatewayError (an
        awaitable when the check has to wait, see Stage)."""


def bearer_token(authorization: bytes | None) -> str | None:
    """The token of `Bearer <token>` (scheme in any case), or None."""
    if authorization is None or len(authorization) < 8:
        return None
    if authorization[:7].lower() != b"bearer ":
        return None
    token = authorization[7:].strip()
    return token.decode("ascii", "replace") if token else None


def presented_token(exchange: Exchange) -> str | None:
    """The bearer token of `Authorization`, else a websocket's from its subprotocol or query."""
    return bearer_token(exchange.request.header(AUTHORIZATION)) or exchange.ws_token


def call_info(exchange: Exchange) -> CallInfo:
    """The request described for the audit log (made only for a refusal)."""
    return CallInfo(
        ip=exchange.client_ip,
        user_agent=exchange.request.header_text(h.B_USER_AGENT),
        request_id=exchange.request_id,
    )


def settle(exchange: Exchange, found: Principal | Awaitable[Principal]) -> StageResult:
    """The principal set at once when the auth core had it cached, else after the look-up."""
    if isinstance(found, Principal):
        exchange.principal = found
        return None
    return _wait(exchange, found)


async def _wait(exchange: Exchange, pending: Awaitable[Principal]) -> None:
    exchange.principal = await pending
