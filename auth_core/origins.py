"""Origin whitelists (docs/routes.md): exact scheme, host and port, or `*.domain`
for its subdomains only. `Origin: null`, `example.com.evil.com` and `evilexample.com` match
nothing. Parsed once into sets; a check is a set look-up or two."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(value: str) -> str | None:
    """`scheme://host[:port]` lower-cased with the default port dropped, or None."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or value.strip().endswith(("?", "#"))
    ):
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class OriginWhitelist:
    """The origins one tenant (or the platform) accepts."""

    def __init__(self, entries: Iterable[str]) -> None:
        exact: set[str] = set()
        wildcards: set[tuple[str, str, int | None]] = set()  # (scheme, .domain, port)
        for entry in entries:
            scheme, _, rest = entry.strip().lower().partition("://")
            if rest.startswith("*."):
                domain, _, port = rest[1:].partition(":")
                wildcards.add((scheme, domain, int(port) if port else None))
                continue
            normal = normalise_origin(entry)
            if normal is None:
                raise ValueError(f"{entry!r} is not an origin")
            exact.add(normal)
        self.exact = frozenset(exact)
        self.wildcards = frozenset(wildcards)

    def __bool__(self) -> bool:
        return bool(self.exact or self.wildcards)

    def allows(self, origin: str) -> bool:
        normal = normalise_origin(origin)
        if normal is None:
            return False
        if normal in self.exact:
            return True
        if not self.wildcards:
            return False
        parts = urlsplit(normal)
        host = parts.hostname or ""
        for scheme, domain, port in self.wildcards:
            # `.example.com` must end the host and leave a label before it: a.example.com
            # passes, example.com and evilexample.com do not.
            if (
                parts.scheme == scheme
                and host.endswith(domain)
                and len(host) > len(domain)
                and (parts.port or _DEFAULT_PORTS[scheme]) == (port or _DEFAULT_PORTS[scheme])
            ):
                return True
        return False
