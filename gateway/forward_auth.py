"""forwardAuth (docs/operations/proxies.md): `GET /api/v1/auth/validate` for Traefik, nginx
`auth_request` and Caddy `forward_auth`. The proxy in front sends the client's credential (an
access token, a PAT, or an API key: any kind) and the original method and URI; the answer is
200 with the signed context headers (for that method and URI), or the 401/403 problem+json
the gateway itself would give.

Only the proxies of GATEWAY_FORWARD_AUTH_CLIENTS may ask: anyone else could have the gateway
sign a context for a method and path of their choosing. What is checked is the TCP peer, the
proxy that connects, never X-Forwarded-For, which the client behind it writes. The `aud`
query parameter names the upstream (of routes.yaml) whose key signs; without it the audience
is `forward_auth`, a name no upstream may take.

A request with no credential of its own may carry the login page's session cookie instead
(docs/login-and-browsers.md); a write it authenticates must pass the CSRF rule
for the forwarded method, and with `?login=redirect` a browser without a session is answered
303 to the login page (for Traefik; nginx takes the 401).

The client address is the resolver's (X-Forwarded-For counts when the asking proxy is in
GATEWAY_TRUSTED_PROXIES); `Origin` is held to the origin whitelist as on any route.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import netaddr

from auth_core import headers as h
from auth_core.errors import MissingCredentials
from auth_core.service import AuthCore
from auth_core.store import DatabaseUnavailable
from gateway.errors import AuthUnavailable, ForwardAuthNotAllowed, InvalidRequest
from gateway.http.response import Response
from gateway.login.browser_auth import ForwardedBrowserAuth
from gateway.login.settings import LoginSettings
from gateway.pipeline.authn.base import NotResponsible
from gateway.pipeline.authn.first_match import any_credential
from gateway.pipeline.authorize import Authorize
from gateway.pipeline.context import ContextSigners, context_values
from gateway.pipeline.exchange import Exchange
from gateway.problem import SERVER_NAME
from gateway.routing.table import FORWARD_AUTH_AUDIENCE

_CACHE_LIMIT = 4096


class ForwardAuth:
    def __init__(
        self,
        core: AuthCore,
        authorize: Authorize,
        clients: netaddr.IPSet,
        login: LoginSettings | None = None,
    ) -> None:
        self.core = core
        self.authorize = authorize
        # Any credential, or the login page's session cookie (gateway/login/browser_auth.py).
        self.credential = ForwardedBrowserAuth(
            any_credential(core), core.cookie_sessions, core.tenants, login or LoginSettings()
        )
        self.clients = clients
        self.signers = ContextSigners(core)
        self._allowed: dict[str, bool] = {}  # by peer address: the same few proxies ask

    def allowed(self, peer: str) -> bool:
        """Whether the TCP peer `peer` is one of GATEWAY_FORWARD_AUTH_CLIENTS."""
        cached = self._allowed.get(peer)
        if cached is None:
            if len(self._allowed) >= _CACHE_LIMIT:
                self._allowed.clear()
            try:
                cached = netaddr.IPAddress(peer) in self.clients
            except (netaddr.AddrFormatError, ValueError, TypeError):
                cached = False  # not an IP peer (a Unix socket): not a listed proxy
            self._allowed[peer] = cached
        return cached

    def audience(self, exchange: Exchange) -> str:
        """The `aud` query parameter: an upstream of the table in force, else 400."""
        named = [value for name, value in parse_qsl(exchange.query[1:], True) if name == "aud"]
        if not named:
            return FORWARD_AUTH_AUDIENCE
        if len(named) > 1:
            raise InvalidRequest("aud may be given once")
        if named[0] not in exchange.table.upstreams:
            raise InvalidRequest("aud must name an upstream of routes.yaml")
        return named[0]

    async def __call__(self, exchange: Exchange) -> Response:
        if not self.allowed(exchange.peer):
            raise ForwardAuthNotAllowed(
                "only the proxies of GATEWAY_FORWARD_AUTH_CLIENTS may call forwardAuth"
            )
        audience = self.audience(exchange)
        request = exchange.request
        try:
            pending = self.credential.authenticate(exchange)
            if isinstance(pending, NotResponsible):
                raise MissingCredentials(pending.needed)
            if pending is not None and not isinstance(pending, Response):
                pending = await pending
            if pending is not None:
                return pending  # a browser sent to the login page
        except DatabaseUnavailable:
            raise AuthUnavailable("the auth core's database is unavailable") from None
        assert exchange.principal is not None
        exchange.auth_method = exchange.principal.method
        checked = self.authorize(exchange)
        if checked is not None and not isinstance(checked, Response):
            await checked
        method = request.header_text(h.B_X_FORWARDED_METHOD) or "GET"
        uri = request.header_text(h.B_X_FORWARDED_URI) or "/"
        values = context_values(exchange)
        signer = self.signers.by_audience.get(audience) or self.signers.make(audience)
        stamp, signature = signer.sign(method.upper(), uri, values)
        headers = [(name.title().encode(), value.encode()) for name, value in values.items()]
        headers += [
            (h.W_X_GATEWAY_TIMESTAMP, stamp.encode()),
            (h.W_X_GATEWAY_SIGNATURE, signature.encode()),
            (h.W_CACHE_CONTROL, b"no-store"),
            (h.W_SERVER, SERVER_NAME.encode()),
        ]
        return Response(200, headers, b"")
