"""forwardAuth (SPEC section 6): `GET /api/v1/auth/validate` for Traefik, nginx
`auth_request` and Caddy `forward_auth`. The proxy in front sends the client's credential (an
access token, a PAT, or an API key: any kind) and
the original method and URI; the answer is 200 with the signed context headers of SPEC section 7
(for that method and URI), or the 401/403 problem+json the gateway itself would give.

The client address is the resolver's (X-Forwarded-For counts when the asking proxy is in
GATEWAY_TRUSTED_PROXIES); `Origin` is held to the origin whitelist as on any route.
"""

from __future__ import annotations

from auth_core.errors import AuthError
from auth_core.service import AuthCore
from auth_core.store import DatabaseUnavailable
from gateway.context import sign
from gateway.errors import AuthUnavailable, from_auth_error
from gateway.http.response import Response
from gateway.pipeline.authorize import Authorize
from gateway.pipeline.context import context_values
from gateway.pipeline.credentials import AnyCredential
from gateway.pipeline.exchange import Exchange
from gateway.problem import SERVER_NAME


class ForwardAuth:
    def __init__(self, core: AuthCore, authorize: Authorize) -> None:
        self.core = core
        self.authorize = authorize
        self.credential = AnyCredential(core)

    async def __call__(self, exchange: Exchange) -> Response:
        request = exchange.request
        try:
            pending = self.credential.authenticate(exchange)
            if pending is not None and not isinstance(pending, Response):
                await pending
        except AuthError as exc:
            raise from_auth_error(exc) from None
        except DatabaseUnavailable:
            raise AuthUnavailable("the auth core's database is unavailable") from None
        assert exchange.principal is not None
        exchange.auth_method = exchange.principal.method
        checked = self.authorize(exchange)
        if checked is not None and not isinstance(checked, Response):
            await checked
        method = request.header_text(b"x-forwarded-method") or "GET"
        uri = request.header_text(b"x-forwarded-uri") or "/"
        values = context_values(exchange)
        keyring = self.core.service_keyring
        assert keyring is not None
        kid, secret = keyring.current
        stamp, signature = sign(kid, secret, method.upper(), uri, values)
        headers = [(name.title().encode(), value.encode()) for name, value in values.items()]
        headers += [
            (b"X-Gateway-Timestamp", stamp.encode()),
            (b"X-Gateway-Signature", signature.encode()),
            (b"Cache-Control", b"no-store"),
            (b"Server", SERVER_NAME.encode()),
        ]
        return Response(200, headers, b"")
