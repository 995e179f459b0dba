"""Immutable route table objects and the matcher.

Matching (docs/routes.md): on the canonical path, on segment boundaries, longest route path
first; among routes with the same path, one naming the request's host beats a wildcard host,
which beats no host; then the method decides (405 when the path matched but not the method).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import netaddr

from auth_core.limits import Rate
from auth_core.origins import OriginWhitelist
from gateway.errors import MethodNotAllowed, RouteNotFound


class AuthKind(StrEnum):
    """How a route authenticates its callers (docs/routes.md)."""

    NONE = "none"
    JWT = "jwt"
    API_KEY = "api_key"
    PAT = "pat"
    ANY = "any"
    SERVICE = "service"


# The `auth:` kinds this build enforces; routes.yaml may name no other.
SUPPORTED_AUTH_KINDS = frozenset(AuthKind)
# Upstreams served inside the gateway process: the auth core's API.
AUTH_CORE: Final = "auth_core"
BUILTIN_UPSTREAMS = frozenset({AUTH_CORE})
# The audience of forwardAuth answers that name no upstream (docs/upstream-services.md): no upstream
# may take the name, or those answers would be signed with its key.
FORWARD_AUTH_AUDIENCE = "forward_auth"


@dataclass(frozen=True, slots=True)
class Target:
    """One upstream server: `http://host:port` or `https://host:port`."""

    url: str
    scheme: str
    host: str
    port: int

    @property
    def authority(self) -> str:
        """The Host header value an upstream expects."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class UpstreamTls:
    """How the gateway speaks TLS to an upstream's https targets (docs/routes.md:
    `tls`): one client context, made at load and shared by every connection."""

    context: ssl.SSLContext = field(compare=False)
    server_name: str | None = None  # the SNI and the name checked; None: each target's host
    verify: bool = True
    # The settings and the files' contents: a reload that finds them changed drops the
    # connections made with the old ones (a renewed client certificate, a new CA).
    fingerprint: str = ""

    def server_hostname(self, host: str) -> str:
        """The name sent in SNI and matched against the certificate for a target's host."""
        return self.server_name or host


@dataclass(frozen=True, slots=True)
class Upstream:
    """A named group of targets with its timeouts, passive health and TLS settings."""

    name: str
    targets: tuple[Target, ...]
    connect_timeout: float = 2.0
    timeout: float = 30.0
    max_fails: int = 3
    fail_timeout: float = 10.0
    keepalive: int = 128
    idle_timeout: float = 60.0
    tls: UpstreamTls | None = None  # None: every target is http://


RATE_KEYS = ("user", "tenant", "credential", "ip")


@dataclass(frozen=True, slots=True)
class RateRule:
    """One `rate_limit` entry: `rate` per caller as `key` names it (user, tenant, credential or
    client address; a caller without the one named, an anonymous one say, is counted by its
    address)."""

    key: str
    rate: Rate


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """A route's own `cors`: which browser origins may call it, and what the gateway tells
    them in preflights and answers."""

    origins: OriginWhitelist
    methods: frozenset[str] | None = None  # None: the route's methods (or all)
    headers: tuple[str, ...] | None = None  # None: echo what a preflight asks for
    expose: tuple[str, ...] = ()
    credentials: bool = False
    max_age: int = 600


@dataclass(frozen=True, slots=True)
class Route:
    """One entry of `routes:`; `line` is where it was written, for messages."""

    name: str
    path: str
    upstream: str
    auth: AuthKind
    methods: frozenset[str] | None = None
    host: str | None = None
    strip_prefix: bool = False
    timeout: float | None = None
    max_body: int = 10 * 1024 * 1024
    websocket: bool = False
    roles: frozenset[str] = frozenset()
    rate_limits: tuple[RateRule, ...] = ()
    cors: CorsPolicy | None = None
    # docs/forwarding.md: the gateway's credential goes on to the upstream (which checks it
    # itself); names with `_` are forwarded (never a disguised framing or identity header).
    forward_credentials: bool = False
    underscores_in_headers: bool = False
    # docs/login-and-browsers.md: the login page's session cookie is accepted
    # too, and a browser without a credential is sent to the login page instead of a 401.
    browser: bool = False
    line: int = 0

    def allows(self, method: str) -> bool:
        """Whether `method` may use this route; HEAD rides along with GET."""
        methods = self.methods
        return methods is None or method in methods or (method == "HEAD" and "GET" in methods)

    def matches_host(self, host: str) -> bool:
        """Whether the request's host (lower-case, no port) is this route's."""
        wanted = self.host
        if wanted is None:
            return True
        if wanted.startswith("*."):
            return host.endswith(wanted[1:]) and len(host) > len(wanted) - 1
        return host == wanted

    def upstream_path(self, path: str) -> str:
        """The path sent upstream: `path` with the route's prefix taken off if asked."""
        if not self.strip_prefix or self.path == "/":
            return path
        rest = path[len(self.path) :]
        return rest if rest.startswith("/") else "/" + rest


def _host_rank(route: Route) -> int:
    if route.host is None:
        return 2
    return 1 if route.host.startswith("*.") else 0


@dataclass(frozen=True)
class RouteTable:
    """The table in force: routes, upstreams, and the top-level settings of routes.yaml."""

    routes: tuple[Route, ...]
    upstreams: Mapping[str, Upstream]
    origins: OriginWhitelist = field(default_factory=lambda: OriginWhitelist(()))
    metrics_allow: netaddr.IPSet = field(
        default_factory=lambda: netaddr.IPSet(["127.0.0.0/8", "::1/128"])
    )
    sha256: str = ""
    source: str = "routes.yaml"
    _by_path: dict[str, tuple[Route, ...]] = field(init=False, repr=False, compare=False)
    _lengths: tuple[int, ...] = field(init=False, repr=False, compare=False)
    uses_hosts: bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[Route]] = {}
        for route in self.routes:
            grouped.setdefault(route.path, []).append(route)
        by_path = {path: tuple(sorted(group, key=_host_rank)) for path, group in grouped.items()}
        object.__setattr__(self, "_by_path", by_path)
        object.__setattr__(self, "_lengths", tuple(sorted({len(p) for p in by_path}, reverse=True)))
        object.__setattr__(self, "uses_hosts", any(r.host for r in self.routes))

    @property
    def tls_fingerprints(self) -> dict[str, str]:
        """Each https upstream's TLS settings and files, digested: a reload compares them, since
        a renewed certificate changes a file routes.yaml names, not routes.yaml itself."""
        return {
            name: upstream.tls.fingerprint
            for name, upstream in self.upstreams.items()
            if upstream.tls is not None
        }

    def match(self, path: str, method: str, host: str = "") -> Route:
        """The route for a canonical `path`; RouteNotFound or MethodNotAllowed otherwise."""
        size = len(path)
        by_path = self._by_path
        for length in self._lengths:
            # A route path matches itself and what lies below it, never a longer segment:
            # /v1/conversations matches /v1/conversations/7, not /v1/conversationsX.
            if length > size or (length != size and length != 1 and path[length] != "/"):
                continue
            group = by_path.get(path[:length])
            if group is None:
                continue
            route = _pick(group, method, host)
            if route is not None:
                return route
        raise RouteNotFound(f"no route for {path}")


def _pick(group: tuple[Route, ...], method: str, host: str) -> Route | None:
    allowed: list[str] = []
    seen_host = False
    for route in group:
        if not route.matches_host(host):
            continue
        seen_host = True
        if route.allows(method):
            return route
        allowed.extend(sorted(route.methods or ()))
    if not seen_host:
        return None
    if method == "OPTIONS":
        # A CORS preflight of a route to the auth core, whatever its `methods`: the gateway
        # answers it (preflight.py), and the auth core refuses any other OPTIONS itself (405).
        for route in group:
            if route.upstream == AUTH_CORE and route.matches_host(host):
                return route
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.append("HEAD")
    raise MethodNotAllowed(method, tuple(dict.fromkeys(allowed)))
