"""What crosses the gateway in each direction: request head to the upstream, response headers
back to the client. Works on raw byte pairs; no dict is built for the request side.

Removed towards the upstream: hop-by-hop headers (RFC 9110 section 7.6.1) and every header the
client names in `Connection`; identity headers only the gateway may set (SPEC section 7); and
the forwarding headers, which the gateway writes itself (believing a client's copy only when
the peer is a trusted proxy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from multidict import CIMultiDict

from gateway import headers as h

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
_TRUSTED_FORWARDING = (h.B_X_FORWARDED_FOR, h.B_X_FORWARDED_PROTO, h.B_X_FORWARDED_HOST)


def connection_tokens(value: bytes) -> set[bytes]:
    """The header names listed in a Connection header, lower-case."""
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


class RequestHeaders:
    """The client's headers, split into those forwarded and those the gateway reads."""

    __slots__ = ("forwarded", "forwarded_for", "forwarded_host", "forwarded_proto", "host")

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        forwarded: list[tuple[bytes, bytes]] = []
        listed: set[bytes] | None = None
        self.forwarded_for: list[bytes] = []
        self.forwarded_proto: bytes | None = None
        self.forwarded_host: bytes | None = None
        self.host: bytes | None = None
        drop = REQUEST_DROP
        identity = h.IDENTITY_PREFIXES
        for pair in raw:
            name = pair[0].lower()
            if name in drop:
                if name == h.B_CONNECTION:
                    tokens = connection_tokens(pair[1])
                    listed = tokens if listed is None else listed | tokens
                elif name == h.B_HOST:
                    self.host = pair[1]
                elif name in _TRUSTED_FORWARDING:
                    if name == h.B_X_FORWARDED_FOR:
                        self.forwarded_for.append(pair[1])
                    elif name == h.B_X_FORWARDED_PROTO:
                        self.forwarded_proto = pair[1]
                    else:
                        self.forwarded_host = pair[1]
                continue
            if name.startswith(identity):
                continue
            forwarded.append(pair)
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


def _text(value: bytes) -> str:
    # aiohttp writes header values as UTF-8: decoding them as UTF-8 round-trips the bytes.
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("latin-1")


def response_headers(raw: Sequence[tuple[bytes, bytes]]) -> CIMultiDict[str]:
    """The upstream's response headers without hop-by-hop ones; Set-Cookie stays repeated."""
    listed: set[bytes] = set()
    for name, value in raw:
        if name.lower() == h.B_CONNECTION:
            listed |= connection_tokens(value)
    drop = RESPONSE_DROP | listed if listed else RESPONSE_DROP
    return CIMultiDict(
        [(_text(name), _text(value)) for name, value in raw if name.lower() not in drop]
    )
