"""The context headers upstreams receive (SPEC section 7)."""

from __future__ import annotations

from gateway.http.response import Response
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage

_AUTH_METHOD = b"X-Auth-Method"


class SetContext(Stage):
    """Adds the identity headers the gateway vouches for."""

    async def __call__(self, exchange: Exchange) -> Response | None:
        exchange.context_headers.append((_AUTH_METHOD, exchange.auth_method.encode()))
        return None
