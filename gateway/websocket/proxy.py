"""Websocket routes on the request path.

`PrepareWebSocket` (a stage, before authentication) checks an upgrade request on a
`websocket: true` route and takes its credential out of the subprotocol list or the query, so
that the ordinary authentication and authorization stages refuse a bad one with an ordinary
401/403 before anything is upgraded. `WebSocketProxy` (the terminal step for such requests)
opens the upstream connection, sends the handshake with the signed context headers, and
answers the client 101 only once the upstream answered 101 with the right
`Sec-WebSocket-Accept`; any other answer goes back as an ordinary response, and the client's
connection closes after it.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Final

from auth_core import headers as h
from auth_core.models import Principal
from gateway.config import Settings
from gateway.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable
from gateway.http.response import Response
from gateway.pipeline.authn.api_key import api_key_of
from gateway.pipeline.authn.base import presented_token
from gateway.pipeline.authn.service import service_token
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult
from gateway.problem import SERVER_NAME
from gateway.proxy.forward import Forwarder
from gateway.proxy.headers import (
    RESPONSE_DROP,
    UNDERSCORE,
    RequestHeaders,
    disguised_response_header,
)
from gateway.proxy.pool import UpstreamPools
from gateway.routing.table import Route
from gateway.websocket.handshake import (
    PROTOCOL,
    UPGRADE,
    ClientHandshake,
    accept_for,
    chosen_protocol,
    read_client_handshake,
    upstream_lines,
)
from gateway.websocket.registry import SocketRegistry
from gateway.websocket.tunnel import Tunnel, UpstreamSide

_SEC_WEBSOCKET = b"sec-websocket-"
# The client's 101 answer, its fixed lines built once (RFC 6455 section 4.2.2).
_SWITCHING: Final[bytes] = b"HTTP/1.1 101 Switching Protocols\r\n" + UPGRADE
_ACCEPT: Final[bytes] = h.W_SEC_WEBSOCKET_ACCEPT + b": "
_X_REQUEST_ID: Final[bytes] = h.W_X_REQUEST_ID + b": "
_X_CONNECTION_ID: Final[bytes] = h.W_X_CONNECTION_ID + b": "


class PrepareWebSocket(Stage):
    def __init__(self, registry: SocketRegistry) -> None:
        self.registry = registry

    def applies(self, route: Route) -> bool:
        return route.websocket

    def __call__(self, exchange: Exchange) -> StageResult:
        route = exchange.route
        request = exchange.request
        if route is None or not request.upgrade or not route.websocket:
            return None
        handshake = read_client_handshake(request, exchange.query)
        exchange.websocket = handshake
        exchange.ws_token = handshake.token  # its query parameter goes in Authenticate
        self.registry.admit(exchange.client_ip, None)
        return None


class WebSocketProxy:
    def __init__(
        self,
        pools: UpstreamPools,
        forwarder: Forwarder,
        registry: SocketRegistry,
        settings: Settings,
    ) -> None:
        self.pools = pools
        self.forwarder = forwarder
        self.registry = registry
        self.settings = settings

    async def __call__(self, exchange: Exchange) -> Response | None:
        handshake = exchange.websocket
        route = exchange.route
        assert handshake is not None
        assert route is not None
        principal = exchange.principal
        tenant_id = principal.tenant_id if principal else None
        self.registry.reserve(exchange.client_ip, tenant_id)
        try:
            return await self._open(exchange, handshake, route, principal)
        except BaseException:
            self.registry.release(exchange.client_ip, tenant_id)
            raise

    async def _open(
        self,
        exchange: Exchange,
        handshake: ClientHandshake,
        route: Route,
        principal: Principal | None,
    ) -> Response | None:
        """Open the upstream's side and, once it said yes, hand the client's connection to
        a tunnel (None). Any other outcome: the place reserved must be given back."""
        group = self.pools.groups.get(route.upstream)
        loop = asyncio.get_running_loop()
        pool = group.choose(set(), loop.time()) if group is not None else None
        if group is None or pool is None:
            raise UpstreamUnavailable("the upstream is unavailable")
        upstream = group.upstream
        target = pool.target
        try:
            async with asyncio.timeout(upstream.connect_timeout):
                transport, side = await loop.create_connection(
                    UpstreamSide,
                    target.host,
                    target.port,
                    ssl=pool.tls,
                    server_hostname=pool.server_hostname,
                )
        except (OSError, TimeoutError, ssl.SSLError):
            pool.failed(loop.time())
            raise UpstreamUnavailable("the upstream is unavailable") from None
        # The client's own handshake headers are not forwarded: the gateway writes its own.
        own = [header for header in exchange.request.headers if not _handshake_header(header[0])]
        start = f"GET {exchange.upstream_path}{exchange.query} HTTP/1.1\r\n".encode()
        head = self.forwarder._head(
            exchange, RequestHeaders(own, route), start, pool, upstream_lines(handshake)
        )
        transport.write(head)
        try:
            async with asyncio.timeout(route.timeout or upstream.timeout):
                await side.head
        except TimeoutError:
            transport.abort()
            raise UpstreamTimeout("the upstream did not answer the handshake in time") from None
        except ConnectionError:
            transport.abort()
            pool.failed(loop.time())
            raise UpstreamUnavailable("the upstream closed the connection") from None
        except BaseException:  # the client went away meanwhile (cancelled): free the upstream
            transport.abort()
            raise
        pool.succeeded()
        if side.status != 101:
            transport.close()
            self.registry.release(exchange.client_ip, principal.tenant_id if principal else None)
            return self._refused_upgrade(exchange, side)
        accept = side.headers.get(h.B_SEC_WEBSOCKET_ACCEPT, b"").strip()
        upgrade = side.headers.get(h.B_UPGRADE, b"").strip().lower()
        if (
            accept != accept_for(handshake.key)
            or upgrade != b"websocket"
            or h.B_SEC_WEBSOCKET_EXTENSIONS in side.headers  # none was offered to it
        ):
            transport.abort()
            raise UpstreamUnavailable("the upstream's handshake answer is not valid")
        try:
            protocol = chosen_protocol(handshake, side.headers.get(h.B_SEC_WEBSOCKET_PROTOCOL))
        except GatewayError:
            transport.abort()
            raise
        tunnel = Tunnel(
            exchange.request.connection,
            side,
            principal=principal,
            client_ip=exchange.client_ip,
            max_message=self.settings.ws_max_message,
            idle_timeout=self.settings.ws_idle_timeout,
            on_end=self.registry.remove,
        )
        if principal is not None and principal.method in ("api_key", "pat", "service"):
            tunnel.secret = _credential(exchange, principal)
        self.registry.add(tunnel)
        answer = [
            _SWITCHING,
            _ACCEPT + accept + b"\r\n",
        ]
        if protocol is not None:
            answer.append(PROTOCOL + protocol + b"\r\n")
        answer.append(_X_REQUEST_ID + exchange.request_id.encode() + b"\r\n")
        answer.append(_X_CONNECTION_ID + tunnel.id.encode() + b"\r\n\r\n")
        exchange.request.connection.take_over(tunnel, b"".join(answer))
        exchange.status = 101
        return None

    def _refused_upgrade(self, exchange: Exchange, side: UpstreamSide) -> Response:
        """The upstream said no (or something else): its answer, as an ordinary response."""
        headers = [
            (name, value)
            for name, value in side.raw_headers
            if name.lower() not in RESPONSE_DROP
            and not name.lower().startswith(_SEC_WEBSOCKET)
            and not (UNDERSCORE in name and disguised_response_header(name.lower()))
        ]
        if h.B_SERVER not in side.headers:
            headers.append((h.W_SERVER, SERVER_NAME.encode()))
        headers.append((h.W_X_REQUEST_ID, exchange.request_id.encode()))
        return Response(side.status, headers, side.body)


def _handshake_header(lowered: bytes) -> bool:
    return lowered.startswith(_SEC_WEBSOCKET)


def _credential(exchange: Exchange, principal: Principal) -> str | None:
    """The key, PAT or service token the socket was opened with, to check it again while the
    socket lives."""
    if principal.method == "api_key":
        return api_key_of(exchange)
    if principal.method == "service":
        return service_token(exchange.request.header(h.B_AUTHORIZATION))
    return presented_token(exchange)
