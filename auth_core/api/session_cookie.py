"""Cookie sessions for browser apps (GATEWAY_SESSION_COOKIES; docs/authentication.md).

The refresh token, a week-long secret, goes into a cookie no script can read (HttpOnly) instead
of the JSON body, where any script on the page could. Its attributes, and why:

- `Secure`, and the `__Secure-` prefix, so that a browser refuses it unless it came over
  HTTPS (or from a loopback origin, which browsers count as secure) and never sends it back
  over plain HTTP;
- `Path=/api/v1/auth`, not the `__Host-` prefix: `__Host-` requires `Path=/`, and a cookie for
  `/` rides along on every request to the host, upstream routes included, where the gateway
  forwards `Cookie` as it is; the refresh token would land in every upstream's hands and logs.
  Scoped to the auth core's path, it reaches login, refresh and logout only, all answered
  inside the gateway. The price: no `__Host-` guarantee against a cookie set for a parent
  domain by a sibling subdomain; such a second cookie of the same name makes the value
  ambiguous, and an ambiguous cookie counts as absent (below);
- `SameSite=Strict`: a cross-site page's requests carry no cookie at all; same-site pages on
  other origins (another port, another subdomain) still do, hence the CSRF rule (csrf.py);
- `HttpOnly`, no `Domain` (this host only), and `Max-Age` the refresh token's lifetime.

A cookie whose value is not a well-formed refresh token, or that appears twice, is treated as
absent: the answer is the one a request without a cookie gets.

Login and signup, which open a session, are held to csrf.py's login rule, and take a JSON body
only (`Content-Type: application/json`): a cross-site HTML form can send only form encodings
and text/plain, and a `fetch()` with the JSON type needs a preflight the whitelist refuses.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from auth_core import headers as h
from auth_core.csrf import refuse_cross_site, refuse_cross_site_login
from auth_core.errors import InvalidRequest, MissingCredentials

COOKIE_NAME = "__Secure-gateway-refresh"
COOKIE_PATH = "/api/v1/auth"
# What sessions.py issues: "gwr_" and 32 random bytes, base64url (secrets.token_urlsafe).
_REFRESH_TOKEN = re.compile(r"gwr_[A-Za-z0-9_-]{43}")
_ATTRIBUTES = f"Path={COOKIE_PATH}; Secure; HttpOnly; SameSite=Strict"
JSON_MEDIA_TYPE = "application/json"


def set_cookie(refresh_token: str, max_age: int) -> str:
    """The Set-Cookie value that hands the browser a refresh token."""
    return f"{COOKIE_NAME}={refresh_token}; Max-Age={max_age}; {_ATTRIBUTES}"


def clear_cookie() -> str:
    """The Set-Cookie value that makes the browser forget it (RFC 6265 section 5.3: Max-Age=0)."""
    return f"{COOKIE_NAME}=; Max-Age=0; {_ATTRIBUTES}"


def refresh_token_from(cookie_header: str | None) -> str | None:
    """The refresh token of a `Cookie` header, or None: no cookie of ours, a malformed value,
    or more than one cookie of that name."""
    if not cookie_header:
        return None
    found: list[str] = []
    for pair in cookie_header.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name == COOKIE_NAME:
            found.append(value.strip())
    if len(found) != 1 or not _REFRESH_TOKEN.fullmatch(found[0]):
        return None
    return found[0]


def require_refresh_token(cookie_header: str | None) -> str:
    """The cookie's refresh token; 401 missing_credentials as for no cookie otherwise."""
    token = refresh_token_from(cookie_header)
    if token is None:
        raise MissingCredentials("no session cookie; log in first")
    return token


def refuse_forged(
    header: Callable[[bytes], str | None], method: str, allowed: Callable[[str], bool]
) -> None:
    """The CSRF rule (csrf.py) for a request authenticated by the cookie."""
    refuse_cross_site(
        method,
        header(h.B_ORIGIN),
        header(h.B_REFERER),
        header(h.B_X_REQUESTED_WITH),
        allowed,
    )


def refuse_forged_login(
    header: Callable[[bytes], str | None], allowed: Callable[[str], bool]
) -> None:
    """csrf.py's login rule, then a JSON body required (415 invalid_request otherwise)."""
    refuse_cross_site_login(
        header(h.B_ORIGIN), header(h.B_REFERER), header(h.B_X_REQUESTED_WITH), allowed
    )
    content_type = header(h.B_CONTENT_TYPE) or ""
    if content_type.partition(";")[0].strip().lower() != JSON_MEDIA_TYPE:
        raise InvalidRequest(
            "with cookie sessions the body must be sent as Content-Type: application/json",
            status=415,
        )


def sent_by_a_page(header: Callable[[bytes], str | None]) -> bool:
    """Whether a request names a page it came from (Origin or Referer): a browser's."""
    return bool((header(h.B_ORIGIN) or "").strip() or (header(h.B_REFERER) or "").strip())
