"""The gateway's rules about headers, by name: which are hop-by-hop, which only the gateway
may set, which carry the credentials it consumes. proxy/headers.py applies them.

The names themselves are in auth_core/headers.py, the one module both packages import them
from (docs/architecture.md, "Layers"): a name is spelt there and nowhere else.
"""

from __future__ import annotations

from typing import Final

from auth_core import headers as h

# RFC 9110 section 7.6.1: meaningful for one connection only, never forwarded. `Upgrade` is
# among them; websocket routes (a later stage) re-add it deliberately. Proxy-Connection and
# Keep-Alive are obsolete but still sent by old clients.
HOP_BY_HOP: Final = frozenset(
    {
        h.B_CONNECTION,
        h.B_KEEP_ALIVE,
        h.B_PROXY_CONNECTION,
        h.B_PROXY_AUTHENTICATE,
        h.B_PROXY_AUTHORIZATION,
        h.B_TE,
        h.B_TRAILER,
        h.B_TRANSFER_ENCODING,
        h.B_UPGRADE,
    }
)

# Identity headers only the gateway may set (docs/upstream-services.md); every
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

# docs/forwarding.md: the credentials the gateway consumes, withheld from upstreams unless the
# route says `forward_credentials: true`. `Authorization` only with the schemes gateway
# credentials use (a JWT, API key or PAT as `Bearer`, a service token as `Service`).
CREDENTIAL_HEADERS: Final = frozenset({h.B_AUTHORIZATION, h.B_X_API_KEY})
CREDENTIAL_SCHEMES: Final = (b"bearer", b"service")

# The websocket handshake headers (Sec-WebSocket-Key, -Version, -Protocol...) the gateway writes
# itself towards the upstream.
B_SEC_WEBSOCKET_PREFIX: Final = b"sec-websocket-"
