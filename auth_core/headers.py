"""HTTP header names, each spelt here and nowhere else in gateway/ and auth_core/ (as aiohttp's
`hdrs`; tests/test_header_constants.py holds it).

Here, at the bottom of the auth core, because both packages name headers and this is the one
place both may import: the auth core never imports the gateway (docs/architecture.md,
"Layers"), and the gateway already takes its one error tree from auth_core/errors.py. The module
is the standard library only, so importing it brings nothing else of the auth core.

Three forms, each defined only where something uses it:

- `NAME`: str, in the usual case: aiohttp, the auth core's str-keyed answer headers, OpenAPI.
- `B_NAME`: lower-case bytes, compared with a raw header name lowered (`Request.header`,
  the upstream's answer as it is parsed).
- `W_NAME`: bytes in the usual case, the names of the raw header pairs the gateway writes.

Module-level `Final`s: the str ones are folded into compiled code by mypyc; the bytes ones are
static loads, this module being compiled with the request path (setup.py), so a constant costs
what the literal did. Typed in full: the compiled build's type check cannot tell the type of a
bare bytes `Final` of a compiled module read at another module's top level ("Cannot determine
type"), as gateway/headers.py reads these to build its sets.

The gateway's own rules about headers (hop-by-hop, identity prefixes, withheld credentials)
are in gateway/headers.py. The signed context headers are also spelt, lower-case, in
gateway/context.py, which services copy on its own (docs/upstream-services.md).
"""

from __future__ import annotations

from typing import Final

B_ACCEPT: Final[bytes] = b"accept"
W_ACCESS_CONTROL_ALLOW_CREDENTIALS: Final[bytes] = b"Access-Control-Allow-Credentials"
W_ACCESS_CONTROL_ALLOW_HEADERS: Final[bytes] = b"Access-Control-Allow-Headers"
W_ACCESS_CONTROL_ALLOW_METHODS: Final[bytes] = b"Access-Control-Allow-Methods"
W_ACCESS_CONTROL_ALLOW_ORIGIN: Final[bytes] = b"Access-Control-Allow-Origin"
W_ACCESS_CONTROL_EXPOSE_HEADERS: Final[bytes] = b"Access-Control-Expose-Headers"
W_ACCESS_CONTROL_MAX_AGE: Final[bytes] = b"Access-Control-Max-Age"
B_ACCESS_CONTROL_REQUEST_HEADERS: Final[bytes] = b"access-control-request-headers"
W_ACCESS_CONTROL_REQUEST_HEADERS: Final[bytes] = b"Access-Control-Request-Headers"
B_ACCESS_CONTROL_REQUEST_METHOD: Final[bytes] = b"access-control-request-method"
W_ACCESS_CONTROL_REQUEST_METHOD: Final[bytes] = b"Access-Control-Request-Method"
ALLOW: Final[str] = "Allow"
B_AUTHORIZATION: Final[bytes] = b"authorization"
CACHE_CONTROL: Final[str] = "Cache-Control"
W_CACHE_CONTROL: Final[bytes] = b"Cache-Control"
B_CONNECTION: Final[bytes] = b"connection"
W_CONNECTION: Final[bytes] = b"Connection"
W_CONTENT_SECURITY_POLICY: Final[bytes] = b"Content-Security-Policy"
B_COOKIE: Final[bytes] = b"cookie"
B_CONTENT_LENGTH: Final[bytes] = b"content-length"
W_CONTENT_LENGTH: Final[bytes] = b"Content-Length"
B_CONTENT_TYPE: Final[bytes] = b"content-type"
W_CONTENT_TYPE: Final[bytes] = b"Content-Type"
B_DATE: Final[bytes] = b"date"
W_DATE: Final[bytes] = b"Date"
B_EXPECT: Final[bytes] = b"expect"
B_FORWARDED: Final[bytes] = b"forwarded"
B_HOST: Final[bytes] = b"host"
W_HOST: Final[bytes] = b"Host"
B_KEEP_ALIVE: Final[bytes] = b"keep-alive"
W_LOCATION: Final[bytes] = b"Location"
ORIGIN: Final[str] = "Origin"
B_ORIGIN: Final[bytes] = b"origin"
W_ORIGIN: Final[bytes] = b"Origin"
B_PROXY_AUTHENTICATE: Final[bytes] = b"proxy-authenticate"
B_PROXY_AUTHORIZATION: Final[bytes] = b"proxy-authorization"
B_PROXY_CONNECTION: Final[bytes] = b"proxy-connection"
B_REFERER: Final[bytes] = b"referer"
# RateLimit header fields (IETF httpapi draft): the auth core's refusals and the routes' limits.
RATELIMIT_LIMIT: Final[str] = "RateLimit-Limit"
W_RATELIMIT_LIMIT: Final[bytes] = b"RateLimit-Limit"
RATELIMIT_POLICY: Final[str] = "RateLimit-Policy"
W_RATELIMIT_POLICY: Final[bytes] = b"RateLimit-Policy"
RATELIMIT_REMAINING: Final[str] = "RateLimit-Remaining"
W_RATELIMIT_REMAINING: Final[bytes] = b"RateLimit-Remaining"
RATELIMIT_RESET: Final[str] = "RateLimit-Reset"
W_RATELIMIT_RESET: Final[bytes] = b"RateLimit-Reset"
W_REFERRER_POLICY: Final[bytes] = b"Referrer-Policy"
RETRY_AFTER: Final[str] = "Retry-After"
B_SEC_WEBSOCKET_ACCEPT: Final[bytes] = b"sec-websocket-accept"
W_SEC_WEBSOCKET_ACCEPT: Final[bytes] = b"Sec-WebSocket-Accept"
B_SEC_WEBSOCKET_EXTENSIONS: Final[bytes] = b"sec-websocket-extensions"
B_SEC_WEBSOCKET_KEY: Final[bytes] = b"sec-websocket-key"
W_SEC_WEBSOCKET_KEY: Final[bytes] = b"Sec-WebSocket-Key"
B_SEC_WEBSOCKET_PROTOCOL: Final[bytes] = b"sec-websocket-protocol"
W_SEC_WEBSOCKET_PROTOCOL: Final[bytes] = b"Sec-WebSocket-Protocol"
SEC_WEBSOCKET_VERSION: Final[str] = "Sec-WebSocket-Version"
B_SEC_WEBSOCKET_VERSION: Final[bytes] = b"sec-websocket-version"
W_SEC_WEBSOCKET_VERSION: Final[bytes] = b"Sec-WebSocket-Version"
B_SERVER: Final[bytes] = b"server"
SET_COOKIE: Final[str] = "Set-Cookie"
W_SET_COOKIE: Final[bytes] = b"Set-Cookie"
W_SERVER: Final[bytes] = b"Server"
W_STRICT_TRANSPORT_SECURITY: Final[bytes] = b"Strict-Transport-Security"
B_TE: Final[bytes] = b"te"
B_TRACEPARENT: Final[bytes] = b"traceparent"
B_TRAILER: Final[bytes] = b"trailer"
B_TRANSFER_ENCODING: Final[bytes] = b"transfer-encoding"
W_TRANSFER_ENCODING: Final[bytes] = b"Transfer-Encoding"
UPGRADE: Final[str] = "Upgrade"
B_UPGRADE: Final[bytes] = b"upgrade"
W_UPGRADE: Final[bytes] = b"Upgrade"
B_USER_AGENT: Final[bytes] = b"user-agent"
W_VARY: Final[bytes] = b"Vary"
WWW_AUTHENTICATE: Final[str] = "WWW-Authenticate"
X_API_KEY: Final[str] = "X-API-Key"
B_X_API_KEY: Final[bytes] = b"x-api-key"
X_CONNECTION_ID: Final[str] = "X-Connection-Id"
W_X_CONNECTION_ID: Final[bytes] = b"X-Connection-Id"
W_X_CONTENT_TYPE_OPTIONS: Final[bytes] = b"X-Content-Type-Options"
X_FORWARDED_FOR: Final[str] = "X-Forwarded-For"
B_X_FORWARDED_FOR: Final[bytes] = b"x-forwarded-for"
W_X_FORWARDED_FOR: Final[bytes] = b"X-Forwarded-For"
X_FORWARDED_HOST: Final[str] = "X-Forwarded-Host"
B_X_FORWARDED_HOST: Final[bytes] = b"x-forwarded-host"
W_X_FORWARDED_HOST: Final[bytes] = b"X-Forwarded-Host"
X_FORWARDED_METHOD: Final[str] = "X-Forwarded-Method"
B_X_FORWARDED_METHOD: Final[bytes] = b"x-forwarded-method"
X_FORWARDED_PROTO: Final[str] = "X-Forwarded-Proto"
B_X_FORWARDED_PROTO: Final[bytes] = b"x-forwarded-proto"
W_X_FORWARDED_PROTO: Final[bytes] = b"X-Forwarded-Proto"
X_FORWARDED_URI: Final[str] = "X-Forwarded-Uri"
B_X_FORWARDED_URI: Final[bytes] = b"x-forwarded-uri"
W_X_FRAME_OPTIONS: Final[bytes] = b"X-Frame-Options"
B_X_REAL_IP: Final[bytes] = b"x-real-ip"
X_REQUEST_ID: Final[str] = "X-Request-Id"
B_X_REQUEST_ID: Final[bytes] = b"x-request-id"
W_X_REQUEST_ID: Final[bytes] = b"X-Request-Id"
B_X_REQUESTED_WITH: Final[bytes] = b"x-requested-with"

# The context headers the gateway sets towards upstreams (docs/upstream-services.md), as it writes
# them; gateway/context.py has their lower-case signed forms.
X_AUTH_METHOD: Final[str] = "X-Auth-Method"
W_X_AUTH_METHOD: Final[bytes] = b"X-Auth-Method"
W_X_CREDENTIAL_ID: Final[bytes] = b"X-Credential-Id"
W_X_GATEWAY_SIGNATURE: Final[bytes] = b"X-Gateway-Signature"
W_X_GATEWAY_TIMESTAMP: Final[bytes] = b"X-Gateway-Timestamp"
W_X_SESSION_ID: Final[bytes] = b"X-Session-Id"
W_X_TENANT_ID: Final[bytes] = b"X-Tenant-Id"
X_USER_EMAIL: Final[str] = "X-User-Email"
W_X_USER_EMAIL: Final[bytes] = b"X-User-Email"
W_X_USER_EMAIL_VERIFIED: Final[bytes] = b"X-User-Email-Verified"
W_X_USER_ID: Final[bytes] = b"X-User-Id"
W_X_USER_ROLES: Final[bytes] = b"X-User-Roles"
