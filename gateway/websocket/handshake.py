"""The opening handshake (RFC 6455 section 4), both halves.

Client side: a websocket request is checked before anything else is done for it, and the
credential a browser cannot put in a header is read from it: `Sec-WebSocket-Protocol:
bearer, <jwt>` (the gateway writes the upstream's subprotocol list itself, without it) or an
`access_token` query parameter (withheld from the upstream as any gateway credential is,
pipeline/withhold.py; the access log logs no query at all).

Upstream side: the upstream's 101 must carry the `Sec-WebSocket-Accept` for the key, and may
choose only a subprotocol that was offered to it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl

from auth_core import headers as h
from gateway.errors import InvalidRequest, UpstreamUnavailable
from gateway.http.request import Request
from gateway.pipeline.withhold import ACCESS_TOKEN

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_PROTOCOLS = 16


def accept_for(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324 - RFC 6455


def _tokens(values: list[bytes]) -> list[bytes]:
    return [item.strip() for value in values for item in value.split(b",") if item.strip()]


def bad_handshake(detail: str) -> InvalidRequest:
    return InvalidRequest(detail)


@dataclass
class ClientHandshake:
    key: bytes
    protocols: list[bytes] = field(default_factory=list)  # offered, minus bearer and token
    bearer: bool = False  # the client offered the `bearer` subprotocol
    token: str | None = None  # the credential taken from the protocol list or the query


def read_client_handshake(request: Request, query: str) -> ClientHandshake:
    """The websocket request's key, subprotocols and credential; 400 when it is not a valid
    websocket handshake."""
    if request.method != "GET" or request.version != "1.1":
        raise bad_handshake("a websocket handshake is GET over HTTP/1.1")
    upgrade = _tokens(request.header_values(h.B_UPGRADE))
    if [item.lower() for item in upgrade] != [b"websocket"]:
        raise bad_handshake("only Upgrade: websocket is accepted")
    if h.B_UPGRADE not in [item.lower() for item in _tokens(request.header_values(h.B_CONNECTION))]:
        raise bad_handshake("a websocket handshake needs Connection: Upgrade")
    if request.header(h.B_SEC_WEBSOCKET_VERSION) != b"13":
        raise InvalidRequest(
            "only websocket version 13 is supported",
            headers={h.SEC_WEBSOCKET_VERSION: "13"},
        )
    key = request.header(h.B_SEC_WEBSOCKET_KEY) or b""
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except (binascii.Error, ValueError):
        raise bad_handshake("Sec-WebSocket-Key must be 16 bytes in base64") from None
    handshake = ClientHandshake(key=key.strip())
    offered = _tokens(request.header_values(h.B_SEC_WEBSOCKET_PROTOCOL))
    if len(offered) > MAX_PROTOCOLS:
        raise bad_handshake("too many subprotocols offered")
    if offered and offered[0].lower() == b"bearer":
        handshake.bearer = True
        if len(offered) > 1:
            handshake.token = offered[1].decode("ascii", "replace")
            offered = offered[2:]
        else:
            offered = offered[1:]
    handshake.protocols = offered
    pairs = parse_qsl(query[1:], keep_blank_values=True) if query else []
    tokens = [value for name, value in pairs if name == ACCESS_TOKEN]
    if tokens and handshake.token is None:
        handshake.token = tokens[0]
    return handshake


# The handshake's header lines, built once: the upgrade asked of the upstream (RFC 6455
# section 4.1), and the start of the protocol line both sides of the gateway send.
UPGRADE: Final[bytes] = h.W_UPGRADE + b": websocket\r\n" + h.W_CONNECTION + b": Upgrade\r\n"
_UPGRADE_LINES: Final[bytes] = UPGRADE + h.W_SEC_WEBSOCKET_VERSION + b": 13\r\n"
_KEY: Final[bytes] = h.W_SEC_WEBSOCKET_KEY + b": "
PROTOCOL: Final[bytes] = h.W_SEC_WEBSOCKET_PROTOCOL + b": "


def upstream_lines(handshake: ClientHandshake) -> bytes:
    """The handshake headers the gateway sends upstream (the client's own are not forwarded)."""
    lines = [
        _UPGRADE_LINES,
        _KEY + handshake.key + b"\r\n",
    ]
    if handshake.protocols:
        lines.append(PROTOCOL + b", ".join(handshake.protocols) + b"\r\n")
    return b"".join(lines)


def chosen_protocol(handshake: ClientHandshake, answered: bytes | None) -> bytes | None:
    """The subprotocol to answer the client with; UpstreamUnavailable if the upstream chose one it
    was not offered."""
    if answered:
        if answered.strip() not in handshake.protocols:
            raise UpstreamUnavailable("the upstream chose a subprotocol it was not offered")
        return answered.strip()
    return b"bearer" if handshake.bearer else None
