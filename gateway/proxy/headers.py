"""What crosses the gateway in each direction: request head to the upstream, response headers
back to the client. Works on raw byte pairs throughout; nothing is decoded.

Removed towards the upstream: hop-by-hop headers (RFC 9110 section 7.6.1) and every header the
client names in `Connection`; identity headers only the gateway may set (docs/upstream-services.md);
and
the forwarding headers, which the gateway writes itself (believing a client's copy only when
the peer is a trusted proxy). Removed towards the client (as the upstream's response is
parsed, in proxy/connection.py): hop-by-hop headers, those the upstream names in
`Connection`, and the framing, which the gateway sets.

Credentials (docs/forwarding.md): on a route that authenticates, the gateway's credential
(`X-API-Key`, an `Authorization` with the Bearer or Service scheme, and on `browser: true`
routes the login page's session cookie) stays here unless the route says
`forward_credentials: true`; the `access_token` query parameter is taken out earlier
(pipeline/withhold.py), before the context is signed over the path.

Names with `_`: WSGI and CGI servers (and the frameworks on them) read `X_User_Id` and
`X-User-Id` alike (both become HTTP_X_USER_ID), so a name spelt with `_` could carry an identity
or framing header past a filter that compares names only. As nginx does by default
(`underscores_in_headers off`), such a name is dropped, unless the route says
`underscores_in_headers: true`; even then a name that reads, with `_` as `-`, as one the
gateway decides (framing, forwarding, identity, credentials, the websocket handshake) is never
forwarded, in either direction. A name without `_` costs one `in` test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from auth_core import headers as h
from gateway.headers import (
    B_SEC_WEBSOCKET_PREFIX,
    CREDENTIAL_HEADERS,
    CREDENTIAL_SCHEMES,
    HOP_BY_HOP,
    IDENTITY_PREFIXES,
)
from gateway.http.request import Header
from gateway.login.cookies import without_session_cookie
from gateway.problem import SERVER_NAME
from gateway.routing.table import AuthKind, Route

# Set by the gateway itself: a client's copy is dropped (or, from a trusted proxy, extended).
_REWRITTEN: Final = frozenset(
    {
        h.B_HOST,
        h.B_CONTENT_LENGTH,
        h.B_EXPECT,
        h.B_X_FORWARDED_FOR,
        h.B_X_FORWARDED_HOST,
        h.B_X_FORWARDED_PROTO,
        h.B_X_REQUEST_ID,
        h.B_TRACEPARENT,
        h.B_X_REAL_IP,
        h.B_FORWARDED,
    }
)
REQUEST_DROP: Final = HOP_BY_HOP | _REWRITTEN
# On a route that withholds credentials (it authenticates, and does not forward them).
WITHHOLDING_DROP: Final = REQUEST_DROP | CREDENTIAL_HEADERS
# On a `browser: true` route that withholds them: the session cookie is one too (only the
# Cookie header of such routes is looked into).
BROWSER_WITHHOLDING_DROP: Final = WITHHOLDING_DROP | {h.B_COOKIE}
# The options of a Connection header that name no header (RFC 9112 section 9.6).
CONNECTION_OPTIONS: Final = frozenset({b"keep-alive", b"close"})
RESPONSE_DROP: Final = HOP_BY_HOP | {h.B_CONTENT_LENGTH}
# Added to a response whose upstream named no Server (the gateway's own, versionless).
SERVER_HEADER: Final = (h.W_SERVER, SERVER_NAME.encode())
# Names the gateway decides towards the upstream: their `_` spellings are never forwarded.
_DECIDED_PREFIXES: Final = (*IDENTITY_PREFIXES, B_SEC_WEBSOCKET_PREFIX)
# b"_"[0], tested as `UNDERSCORE in name`: an int is a byte search, where `b"_" in name` goes
# through the buffer protocol first (ten times the cost, on every header both ways).
UNDERSCORE: Final = 0x5F
_NO_AUTH: Final = AuthKind.NONE
_CREDENTIAL_SCHEMES: Final = CREDENTIAL_SCHEMES
# gateway.headers is not compiled: its names are dict look-ups here unless bound to a Final.
_IDENTITY_PREFIXES: Final = IDENTITY_PREFIXES
# RequestHeaders tests a name for `x-` before it tests these prefixes.
if not all(prefix.startswith(b"x-") for prefix in IDENTITY_PREFIXES):
    raise RuntimeError("every identity header prefix must begin with x-")


def connection_tokens(value: bytes) -> set[bytes]:
    """The header names listed in a Connection header, lower-case, `_` read as `-`."""
    return {
        token.strip().lower().replace(b"_", b"-") for token in value.split(b",") if token.strip()
    }


def disguised_request_header(lowered: bytes) -> bool:
    """Whether a lower-case name holding `_` reads, with `_` as `-`, as one of the request
    headers the gateway decides."""
    name = lowered.replace(b"_", b"-")
    return name in WITHHOLDING_DROP or name.startswith(_DECIDED_PREFIXES)


def disguised_response_header(lowered: bytes) -> bool:
    """Whether a lower-case name holding `_` reads, with `_` as `-`, as a hop-by-hop or
    framing response header."""
    return lowered.replace(b"_", b"-") in RESPONSE_DROP


class RequestHeaders:
    """The client's headers, split into those forwarded (already as `name: value` lines) and
    those the gateway reads."""

    __slots__ = ("forwarded_for", "forwarded_host", "forwarded_proto", "host", "lines")

    def __init__(self, headers: Sequence[Header], route: Route) -> None:
        lines: list[bytes] = []
        listed: set[bytes] | None = None
        self.forwarded_for: list[bytes] = []
        self.forwarded_proto: bytes | None = None
        self.forwarded_host: bytes | None = None
        self.host: bytes | None = None
        # On `auth: none` nothing is the gateway's credential: all of it is forwarded.
        withhold = route.auth is not _NO_AUTH and not route.forward_credentials
        if withhold:
            drop = BROWSER_WITHHOLDING_DROP if route.browser else WITHHOLDING_DROP
        else:
            drop = REQUEST_DROP
        identity = _IDENTITY_PREFIXES
        for lowered, name, value in headers:
            if lowered in drop:
                # The most frequent first: Host on every request, then the credential.
                if lowered == h.B_HOST:
                    self.host = value
                elif lowered == h.B_AUTHORIZATION:
                    if not value[:7].lower().startswith(_CREDENTIAL_SCHEMES):
                        lines.append(name + b": " + value + b"\r\n")  # Basic: not the gateway's
                elif lowered == h.B_CONNECTION:
                    if value.lower() in CONNECTION_OPTIONS:
                        continue
                    tokens = connection_tokens(value) - CONNECTION_OPTIONS
                    if tokens:
                        listed = tokens if listed is None else listed | tokens
                elif lowered == h.B_X_FORWARDED_FOR:
                    self.forwarded_for.append(value)
                elif lowered == h.B_X_FORWARDED_PROTO:
                    self.forwarded_proto = value
                elif lowered == h.B_X_FORWARDED_HOST:
                    self.forwarded_host = value
                elif lowered == h.B_COOKIE:
                    kept = without_session_cookie(value)
                    if kept:
                        lines.append(name + b": " + kept + b"\r\n")
                continue
            # Every identity prefix begins with `x-`: tested first, one bytes comparison where the
            # tuple's test is a method call (compiled), for the names that are not identity's.
            if lowered.startswith(b"x-") and lowered.startswith(identity):
                continue
            if UNDERSCORE in lowered and (
                not route.underscores_in_headers or disguised_request_header(lowered)
            ):
                continue
            lines.append(name + b": " + value + b"\r\n")
        if listed:
            lines = [
                line
                for line in lines
                if line.split(b":", 1)[0].lower().replace(b"_", b"-") not in listed
            ]
        self.lines = lines
