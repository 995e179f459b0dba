"""The login page's cookies and their headers (docs/login-and-browsers.md).

- `__Secure-gw_session`: the session. `HttpOnly` (no script reads it), `Secure` (never over
  plain HTTP; the `__Secure-` prefix makes browsers refuse it from a plain-HTTP page too),
  `SameSite=Lax`: sent on top-level navigations, including the 303 back to the app after the
  login and a link to the dashboard from a mail or another site, but not on cross-site
  sub-requests or form posts. `Strict` would drop it on those navigations (the user would
  land on the login page although logged in); writes are guarded by the CSRF rule anyway
  (auth_core/csrf.py). `Domain` is GATEWAY_LOGIN_COOKIE_DOMAIN when set, so that the
  dashboards on its subdomains receive it; otherwise the cookie is the login host's only.
- `__Host-gw_login`: the login form's pre-session cookie (a random nonce the form's token is
  bound to), host-only, `Path=/`, `SameSite=Strict`, an hour.
"""

from __future__ import annotations

from collections.abc import Iterable

SESSION_COOKIE = "__Secure-gw_session"
LOGIN_COOKIE = "__Host-gw_login"
LOGIN_COOKIE_MAX_AGE = 3600


def cookie_value(headers: Iterable[bytes], name: str) -> str | None:
    """The value of the first cookie called `name` in the request's `Cookie` headers."""
    wanted = name.encode()
    for header in headers:
        for pair in header.split(b";"):
            key, sep, value = pair.strip().partition(b"=")
            if sep and key == wanted:
                text = value.strip().strip(b'"').decode("ascii", "replace")
                return text or None
    return None


def without_session_cookie(value: bytes) -> bytes:
    """A `Cookie` header's value without the session cookie (the gateway's credential, kept
    from upstreams as `Authorization` is); the app's own cookies stay as they were sent."""
    wanted = SESSION_COOKIE.encode() + b"="
    if wanted not in value:
        return value
    kept = [pair for pair in value.split(b";") if not pair.strip().startswith(wanted)]
    return b";".join(kept).strip()


def session_cookie(value: str, max_age: int, domain: str | None) -> bytes:
    """The Set-Cookie value that stores a session."""
    return _cookie(SESSION_COOKIE, value, max_age, domain, "Lax", http_only=True)


def clear_session_cookie(domain: str | None) -> bytes:
    """The Set-Cookie value that removes the session cookie (same Domain and Path)."""
    return _cookie(SESSION_COOKIE, "", 0, domain, "Lax", http_only=True)


def login_cookie(nonce: str) -> bytes:
    return _cookie(LOGIN_COOKIE, nonce, LOGIN_COOKIE_MAX_AGE, None, "Strict", http_only=True)


def clear_login_cookie() -> bytes:
    return _cookie(LOGIN_COOKIE, "", 0, None, "Strict", http_only=True)


def _cookie(
    name: str, value: str, max_age: int, domain: str | None, same_site: str, *, http_only: bool
) -> bytes:
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}"]
    if domain is not None:
        parts.append(f"Domain={domain}")
    parts += ["Secure", f"SameSite={same_site}"]
    if http_only:
        parts.append("HttpOnly")
    return "; ".join(parts).encode()
