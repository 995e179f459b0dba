"""The context headers upstreams receive (SPEC section 7)."""

from __future__ import annotations

from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult

_AUTH_METHOD = {
    method: b"X-Auth-Method: " + method.encode() + b"\r\n"
    for method in ("none", "jwt", "api_key", "pat", "service")
}


class SetContext(Stage):
    """Adds the identity headers the gateway vouches for."""

    def __call__(self, exchange: Exchange) -> StageResult:
        exchange.context_headers.append(_AUTH_METHOD[exchange.auth_method])
        return None
