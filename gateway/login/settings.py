"""The login page's settings, from the environment (docs/configuration.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

LOGIN_PATH = "/auth/login"
LOGOUT_PATH = "/auth/logout"
_HOST = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)


def cookie_domain(value: str) -> str:
    """A host name for the cookie's Domain attribute (a leading dot is dropped, as browsers
    do since RFC 6265)."""
    host = value.strip().lstrip(".").lower()
    if not _HOST.fullmatch(host) or ("." not in host and host != "localhost"):
        raise ValueError(f"{value!r} is not a host name such as example.com")
    return host


def login_url(value: str) -> str:
    """Where browsers are sent to log in: a path on the gateway's host, or an absolute
    http(s) URL of the gateway's login page on another host."""
    text = value.strip()
    if text.startswith("/") and not text.startswith("//") and "\\" not in text:
        return text
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.hostname and "@" not in parts.netloc:
        return text
    raise ValueError(f"{value!r} is not a path (/auth/login) or an http(s) URL")


def default_return(value: str) -> str:
    """Where a login goes when no acceptable return URL was given: a path of this host."""
    text = value.strip()
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        raise ValueError(f"{value!r} must be a path such as /")
    return text


@dataclass(frozen=True, slots=True)
class LoginSettings:
    # GATEWAY_LOGIN_COOKIE_DOMAIN: the session cookie goes to this domain and its subdomains
    # (the dashboards' hosts); None: only to the host that served the login page.
    cookie_domain: str | None = None
    # GATEWAY_LOGIN_URL: the login page browsers without a session are sent to.
    login_url: str = LOGIN_PATH
    # GATEWAY_LOGIN_DEFAULT_RETURN: after a login without an acceptable return URL.
    default_return: str = "/"
