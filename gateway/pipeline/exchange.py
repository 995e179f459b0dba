"""The state one request carries through the pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from auth_core.models import Principal
from gateway.http.request import Request
from gateway.routing.table import Route, RouteTable
from gateway.websocket.handshake import ClientHandshake

if TYPE_CHECKING:
    from gateway.proxy.pool import TargetPool


class Exchange:
    """One request on its way through the stages; each stage fills in its own part."""

    __slots__ = (
        "auth_method",
        "client_ip",
        "context_headers",
        "path",
        "peer",
        "peer_trusted",
        "principal",
        "query",
        "request",
        "request_id",
        "response_headers",
        "route",
        "sent",
        "started",
        "status",
        "table",
        "target",
        "traceparent",
        "upstream_path",
        "upstream_started",
        "upstream_status",
        "websocket",
        "ws_token",
    )

    def __init__(self, request: Request, request_id: str, table: RouteTable) -> None:
        self.request = request
        self.request_id = request_id
        self.table = table  # the table in force when the request arrived, whatever reloads do
        self.started = 0  # time.monotonic_ns() when the gateway took the request
        self.path = ""  # canonical: what routes match and upstreams receive
        self.query = ""  # exactly as the client sent it, `?` included
        self.peer = ""  # the TCP peer
        self.peer_trusted = False  # the peer is a trusted proxy (its X-Forwarded-* count)
        self.client_ip = ""  # the client behind any trusted proxies
        self.route: Route | None = None
        self.upstream_path = ""
        self.traceparent = b""
        self.status = 0  # set by a terminal step that streamed its response
        self.auth_method = "none"
        self.principal: Principal | None = None  # who the credential proved, if any
        self.context_headers: list[bytes] = []  # complete `Name: value\r\n` lines
        # Added to the client's answer; replaced (not appended to) when a stage adds some, so
        # a request that adds none allocates nothing.
        self.response_headers: Sequence[tuple[bytes, bytes]] = ()
        self.websocket: ClientHandshake | None = None  # a websocket route's upgrade request
        self.ws_token: str | None = None  # its credential from the subprotocol or query
        # For the access log and metrics (gateway/server/recording.py), set by the forwarder:
        # the target tried last, when (monotonic_ns), its answer's status (0: none), and the body
        # bytes of a streamed answer relayed so far.
        self.target: TargetPool | None = None
        self.upstream_started = 0
        self.upstream_status = 0
        self.sent = 0
