"""What crosses the gateway in each direction: request head to the upstream, response headers
back to the client. Works on raw byte pairs throughout; nothing is decoded.

Removed towards the upstream: hop-by-hop headers (RFC 9110 section 7.6.1) and every header the
client names in `Connection`; identity headers only the gateway may set (SPEC section 7); and
the forwarding headers, which the gateway writes itself (believing a client's copy only when
the peer is a trusted proxy). Removed towards the client: hop-by-hop headers, those the
upstream names in `Connection`, and the framing, which the gateway sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
RESPONSE_DROP = h.HOP_BY_HOP | {h.B_CONTENT_LENGTH}
_SERVER = (b"Server", SERVER_NAME.encode())


def connection_tokens(value: bytes) -> set[bytes]:
    """The header names listed in a Connection header, lower-case."""
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


class RequestHeaders:
    """The client's headers, split into those forwarded and those the gateway reads."""

    __slots__ = ("forwarded", "forwarded_for", "forwarded_host", "forwarded_proto", "host")

    def __init__(self, headers: Sequence[Header]) -> None:
        forwarded: list[tuple[bytes, bytes]] = []
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
                    tokens = connection_tokens(value)
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
            forwarded.append((name, value))
        if listed:
            forwarded = [pair for pair in forwarded if pair[0].lower() not in listed]
        self.forwarded = forwarded


def request_head(
    method: str,
    target: str,
    forwarded: Iterable[tuple[bytes, bytes]],
    added: Iterable[tuple[bytes, bytes]],
) -> bytes:
    """The request line and headers, ready to write in one go."""
    parts = [f"{method} {target} HTTP/1.1\r\n".encode()]
    for name, value in forwarded:
        parts += (name, b": ", value, b"\r\n")
    for name, value in added:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def response_headers(raw: Sequence[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], bool]:
    """The upstream's headers for the client (Set-Cookie stays repeated, order is kept), and
    whether they carry a Date. A Server header is added when the upstream sent none."""
    kept: list[tuple[bytes, bytes]] = []
    listed: set[bytes] | None = None
    dated = False
    named = False
    drop = RESPONSE_DROP
    for pair in raw:
        lowered = pair[0].lower()
        if lowered in drop:
            if lowered == h.B_CONNECTION:
                tokens = connection_tokens(pair[1])
                listed = tokens if listed is None else listed | tokens
            continue
        if lowered == b"date":
            dated = True
        elif lowered == b"server":
            named = True
        kept.append(pair)
    if listed:
        kept = [pair for pair in kept if pair[0].lower() not in listed]
    if not named:
        kept.append(_SERVER)
    return kept, dated
