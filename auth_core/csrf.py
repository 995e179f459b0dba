"""Cross-site request forgery: the rule for requests a browser authenticates by cookie.

A browser attaches cookies to any request to our host, whichever page made it. A request that
changes state and is authenticated by a cookie is served only with two proofs that a page on a
whitelisted origin sent it (OWASP CSRF cheat sheet: "Verifying origin with standard headers"
and "Custom request headers"):

- `Origin` (or, when a browser sent none, the origin of `Referer`) is on the whitelist;
- a custom request header, `X-Requested-With` (any value): a cross-site HTML form cannot send
  one, and a cross-site `fetch()` that does needs a CORS preflight the whitelist refuses.

Safe methods (RFC 9110 section 9.2.1) change nothing and pass. Requests authenticated by a
bearer token or an API key never reach this rule: a browser does not attach those on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from auth_core.errors import CsrfRefused

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def origin_of_referer(referer: str) -> str | None:
    """`scheme://host[:port]` of a Referer URL, or None when it is not an absolute http(s) URL."""
    try:
        parts = urlsplit(referer.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def refuse_cross_site(
    method: str,
    origin: str | None,
    referer: str | None,
    requested_with: str | None,
    allowed: Callable[[str], bool],
) -> None:
    """Raise CsrfRefused unless a cookie-authenticated `method` request carries both proofs.

    `allowed(origin)` says whether an origin is on the whitelist that applies (the top-level
    `origins` of routes.yaml, or the tenant's)."""
    if method.upper() in SAFE_METHODS:
        return
    if requested_with is None:
        raise CsrfRefused("a cookie-authenticated write needs the X-Requested-With header")
    source = origin.strip() if origin else None
    if not source and referer:
        source = origin_of_referer(referer)
    # "null" is what a sandboxed frame or a file: page sends: never on a whitelist.
    if not source or source == "null" or not allowed(source):
        raise CsrfRefused("this request's origin may not write with a cookie")
