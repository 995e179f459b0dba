"""Where a login may send the browser back to: no open redirect (docs/login-and-browsers.md).

Accepted: an absolute `http(s)://host[:port]/...` URL whose origin is on the top-level
`origins` of routes.yaml or on a tenant's list, or a path on the login page's own host
(`/dashboard?tab=2`). Everything else gets the default page (GATEWAY_LOGIN_DEFAULT_RETURN):
an origin off the lists, `//evil.example` (a "relative-protocol" URL: another host), `/\\evil`
(browsers read `\\` as `/`), `javascript:`, `data:` and every other scheme, user info
(`https://app.example.com@evil.example`), control characters, spaces and other characters
outside printable ASCII, and anything longer than MAX_RETURN.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from auth_core.origins import normalise_origin
from auth_core.tenancy import Tenants
from gateway.routing.table import RouteTable

MAX_RETURN = 2048


def _is_local_path(value: str) -> bool:
    return value.startswith("/") and not value.startswith(("//", "/\\"))


def _origin_of(value: str) -> str | None:
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return normalise_origin(f"{parts.scheme}://{parts.netloc}")


def plausible(value: str | None) -> str | None:
    """The return URL when its form is acceptable (a whitelist may still refuse its origin)."""
    if not value or len(value) > MAX_RETURN:
        return None
    # Printable ASCII only (a browser sends anything else percent-encoded): nothing that could
    # end the Location header or be read differently by another URL parser.
    if any(not 0x20 < ord(char) < 0x7F or char == "\\" for char in value):
        return None
    if _is_local_path(value) or _origin_of(value) is not None:
        return value
    return None


async def safe_return(value: str | None, table: RouteTable, tenants: Tenants, default: str) -> str:
    """`value` when a login may go there, else `default`."""
    candidate = plausible(value)
    if candidate is None:
        return default
    if _is_local_path(candidate):
        return candidate
    origin = _origin_of(candidate)
    assert origin is not None
    if table.origins.allows(origin):
        return candidate
    index = tenants.cached_origin_index() or await tenants.load_origin_index()
    return candidate if index.origins.allows(origin) else default
