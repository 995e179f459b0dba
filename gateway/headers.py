"""Header names, in one place (as aiohttp's `hdrs`): str for aiohttp, lower-case bytes for the
hot path that works on raw header pairs."""

from __future__ import annotations

from typing import Final

ALLOW: Final = "Allow"
AUTHORIZATION: Final = "Authorization"
CONNECTION: Final = "Connection"
CONTENT_LENGTH: Final = "Content-Length"
CONTENT_TYPE: Final = "Content-Type"
EXPECT: Final = "Expect"
HOST: Final = "Host"
RETRY_AFTER: Final = "Retry-After"
SERVER: Final = "Server"
SET_COOKIE: Final = "Set-Cookie"
TRACEPARENT: Final = "traceparent"
WWW_AUTHENTICATE: Final = "WWW-Authenticate"
X_FORWARDED_FOR: Final = "X-Forwarded-For"
X_FORWARDED_HOST: Final = "X-Forwarded-Host"
X_FORWARDED_PROTO: Final = "X-Forwarded-Proto"
X_REQUEST_ID: Final = "X-Request-Id"
X_USER_EMAIL_VERIFIED: Final = "X-User-Email-Verified"

# Lower-case byte forms, compared against `name.lower()` of raw header pairs.
B_AUTHORIZATION: Final = b"authorization"
B_CONNECTION: Final = b"connection"
B_CONTENT_LENGTH: Final = b"content-length"
B_EXPECT: Final = b"expect"
B_HOST: Final = b"host"
B_TRACEPARENT: Final = b"traceparent"
B_TRANSFER_ENCODING: Final = b"transfer-encoding"
B_USER_AGENT: Final = b"user-agent"
B_X_FORWARDED_FOR: Final = b"x-forwarded-for"
B_X_API_KEY: Final = b"x-api-key"
B_X_FORWARDED_HOST: Final = b"x-forwarded-host"
B_X_FORWARDED_PROTO: Final = b"x-forwarded-proto"
B_X_REQUEST_ID: Final = b"x-request-id"

# RFC 9110 section 7.6.1: meaningful for one connection only, never forwarded. `Upgrade` is
# among them; websocket routes (a later stage) re-add it deliberately. Proxy-Connection and
# Keep-Alive are obsolete but still sent by old clients.
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Identity headers only the gateway may set (README: Context headers to upstreams); every
# client-sent copy is dropped.
# X-Credential-Id is among the signed context headers, so it goes too although no prefix
# of that list covers it.
IDENTITY_PREFIXES: Final = (
    b"x-user-",
    b"x-tenant-",
    b"x-auth-",
    b"x-session-",
    b"x-gateway-",
    b"x-credential-",
)

# README "Forwarding": the credentials the gateway consumes, withheld from upstreams unless the
# route says `forward_credentials: true`. `Authorization` only with the schemes gateway
# credentials use (a JWT, API key or PAT as `Bearer`, a service token as `Service`).
CREDENTIAL_HEADERS: Final = frozenset({B_AUTHORIZATION, B_X_API_KEY})
CREDENTIAL_SCHEMES: Final = (b"bearer", b"service")

# The websocket handshake headers (Sec-WebSocket-Key, -Version, -Protocol...) the gateway writes
# itself towards the upstream.
B_SEC_WEBSOCKET_PREFIX: Final = b"sec-websocket-"
