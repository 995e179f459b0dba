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

A request that opens a cookie session (login, signup) is held to the same two proofs when a
browser sent it (refuse_cross_site_login says why, and how it tells).
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
    *,
    what: str = "a cookie-authenticated write",
) -> None:
    """Raise CsrfRefused unless a cookie-authenticated `method` request carries both proofs.

    `allowed(origin)` says whether an origin is on the whitelist that applies (the top-level
    `origins` of routes.yaml, or the tenant's); `what` names the request in the refusal."""
    if method.upper() in SAFE_METHODS:
        return
    if requested_with is None:
        raise CsrfRefused(f"{what} needs the X-Requested-With header")
    source = origin.strip() if origin else None
    if not source and referer:
        source = origin_of_referer(referer)
    # "null" is what a sandboxed frame or a file: page sends: never on a whitelist.
    if not source or source == "null" or not allowed(source):
        raise CsrfRefused(f"{what} may not come from this request's origin")


def refuse_cross_site_login(
    origin: str | None,
    referer: str | None,
    requested_with: str | None,
    allowed: Callable[[str], bool],
) -> None:
    """Raise CsrfRefused unless a request that *opens* a cookie session (login, signup) came
    from a whitelisted page or from no page at all.

    Login CSRF: a page of the same site on another origin (another port or subdomain; the
    `SameSite` of the cookie does not stop it) posts the attacker's credentials to the login,
    and the answer plants the attacker's session cookie in the victim's browser, whose later
    doings then land in the attacker's account. Why the rule differs from
    refuse_cross_site's: such a request carries no cookie, so there is nothing to have been
    sent along by the browser on its own, and clients that are no browser (curl, a tenant's
    backend) log in too, with neither `Origin` nor `Referer`. A browser always sends `Origin`
    with a cross-origin POST (Fetch standard, "append a request Origin header"), so a request
    without both came from no page and passes; one with either is held to the full rule."""
    if not (origin and origin.strip()) and not (referer and referer.strip()):
        return
    refuse_cross_site(
        "POST", origin, referer, requested_with, allowed, what="a login or signup from a page"
    )
