"""What crosses the gateway in each direction: request head to the upstream, response headers
back to the client. Works on raw byte pairs throughout; nothing is decoded.

Removed towards the upstream: hop-by-hop headers (RFC 9110 section 7.6.1) and every header the
client names in `Connection`; identity headers only the gateway may set (SPEC section 7); and
the forwarding headers, which the gateway writes itself (believing a client's copy only when
the peer is a trusted proxy). Removed towards the client (as the upstream's response is
parsed, in proxy/connection.py): hop-by-hop headers, those the upstream names in
`Connection`, and the framing, which the gateway sets.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway import headers as h
from gateway.http.request import Header
from gateway.problem import SERVER_NAME

# Set by the gateway itself: a client's copy is dropped (or, from a trusted proxy, extended).
_REWRITTEN = frozenset(
    {
        h.B_HOST,
        h.B_CONTENT_LENGTH,
        h.B_EXPECT,
        h.B_X_FORWARDED_FOR,
        h.B_X_FORWARDED_HOST,
        h.B_X_FORWARDED_PROTO,
        h.B_X_REQUEST_ID,
        h.B_TRACEPARENT,
        b"x-real-ip",
        b"forwarded",
    }
)
REQUEST_DROP = h.HOP_BY_HOP | _REWRITTEN
_CONNECTION_OPTIONS = frozenset({b"keep-alive", b"close"})
RESPONSE_DROP = h.HOP_BY_HOP | {h.B_CONTENT_LENGTH}
# Added to a response whose upstream named no Server (the gateway's own, versionless).
SERVER_HEADER = (b"Server", SERVER_NAME.encode())


def connection_tokens(value: bytes) -> set[bytes]:
    """The header names listed in a Connection header, lower-case."""
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


class RequestHeaders:
    """The client's headers, split into those forwarded (already as `name: value` lines) and
    those the gateway reads."""

    __slots__ = ("forwarded_for", "forwarded_host", "forwarded_proto", "host", "lines")

    def __init__(self, headers: Sequence[Header]) -> None:
        lines: list[bytes] = []
        listed: set[bytes] | None = None
        self.forwarded_for: list[bytes] = []
        self.forwarded_proto: bytes | None = None
        self.forwarded_host: bytes | None = None
        self.host: bytes | None = None
        drop = REQUEST_DROP
        identity = h.IDENTITY_PREFIXES
        for lowered, name, value in headers:
            if lowered in drop:
                if lowered == h.B_CONNECTION:
                    if value.lower() in _CONNECTION_OPTIONS:
                        continue
                    tokens = connection_tokens(value) - _CONNECTION_OPTIONS
                    if tokens:
                        listed = tokens if listed is None else listed | tokens
                elif lowered == h.B_HOST:
                    self.host = value
                elif lowered == h.B_X_FORWARDED_FOR:
                    self.forwarded_for.append(value)
                elif lowered == h.B_X_FORWARDED_PROTO:
                    self.forwarded_proto = value
                elif lowered == h.B_X_FORWARDED_HOST:
                    self.forwarded_host = value
                continue
            if lowered.startswith(identity):
                continue
            lines.append(name + b": " + value + b"\r\n")
        if listed:
            lines = [line for line in lines if line.split(b":", 1)[0].lower() not in listed]
        self.lines = lines
