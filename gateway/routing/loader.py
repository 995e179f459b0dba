"""routes.yaml -> RouteTable, validated once, with `file:line: reason` for every mistake.

The file is composed into YAML nodes (which keep their line numbers) and walked by hand, so
that an error points at the line that caused it, and unknown or duplicate keys are refused
rather than silently ignored (a misspelt `auth` must never make a route public).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import netaddr
import yaml

from auth_core.errors import SettingsError
from auth_core.limits import Rate
from auth_core.origins import OriginWhitelist, normalise_origin
from auth_core.units import parse_duration, parse_size
from gateway.routing.paths import PathError, canonical_path
from gateway.routing.table import (
    BUILTIN_UPSTREAMS,
    FORWARD_AUTH_AUDIENCE,
    RATE_KEYS,
    SUPPORTED_AUTH_KINDS,
    AuthKind,
    CorsPolicy,
    RateRule,
    Route,
    RouteTable,
    Target,
    Upstream,
)

T = TypeVar("T")

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
TOP_LEVEL_KEYS = (
    "version",
    "origins",
    "upstreams",
    "routes",
    "metrics",
    "underscores_in_headers",
)
UPSTREAM_KEYS = (
    "targets",
    "connect_timeout",
    "timeout",
    "max_fails",
    "fail_timeout",
    "keepalive",
    "idle_timeout",
)
ROUTE_KEYS = (
    "name",
    "path",
    "upstream",
    "auth",
    "methods",
    "host",
    "strip_prefix",
    "timeout",
    "max_body",
    "websocket",
    "roles",
    "rate_limit",
    "cors",
    "forward_credentials",
    "underscores_in_headers",
)
# A route's `cors` and `rate_limit` entries.
CORS_KEYS = ("origins", "methods", "headers", "expose", "credentials", "max_age")
RATE_LIMIT_KEYS = ("key", "limit", "per")
MAX_RATE_LIMITS = 4


class _Walker:
    """Turns YAML nodes into values, raising SettingsError at the node's line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._constructor = yaml.constructor.SafeConstructor()

    def fail(self, node: yaml.Node, reason: str) -> SettingsError:
        return SettingsError.at(self.source, node.start_mark.line + 1, reason)

    def mapping(
        self, node: yaml.Node, where: str, allowed: Collection[str]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(key_node, f"{where}: YAML merge keys (<<) are not supported")
            key = self.scalar(key_node)
            if not isinstance(key, str):
                raise self.fail(key_node, f"{where}: keys must be strings")
            if key in out:
                raise self.fail(key_node, f"{where}: duplicate key '{key}'")
            if key not in allowed:
                raise self.fail(
                    key_node,
                    f"{where}: unknown key '{key}'; expected one of {', '.join(allowed)}",
                )
            out[key] = (key_node, value_node)
        return out

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{where} must be a list")
        return list(node.value)

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, "expected a single value")
        try:
            return self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError):
            raise self.fail(node, f"cannot read the value {node.value!r}") from None

    def string(self, node: yaml.Node, where: str) -> str:
        value = self.scalar(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str) or not value:
            raise self.fail(node, f"{where} must be a non-empty string")
        return value

    def boolean(self, node: yaml.Node, where: str) -> bool:
        value = self.scalar(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, bool):
            raise self.fail(node, f"{where} must be true or false")
        return value

    def integer(self, node: yaml.Node, where: str, minimum: int = 1) -> int:
        value = self.scalar(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(node, f"{where} must be an integer of at least {minimum}")
        return value

    def converted(self, node: yaml.Node, where: str, convert: Callable[[object], T]) -> T:
        try:
            return convert(self.scalar(node))
        except ValueError as exc:
            raise self.fail(node, f"{where}: {exc}") from None

    def strings(self, node: yaml.Node, where: str) -> list[tuple[yaml.Node, str]]:
        return [
            (item, self.string(item, f"{where}[{i}]"))
            for i, item in enumerate(self.sequence(node, where))
        ]


def load_route_table(
    path: str | Path,
    *,
    auth_kinds: Collection[AuthKind] = SUPPORTED_AUTH_KINDS,
    builtin_upstreams: Collection[str] = BUILTIN_UPSTREAMS,
) -> RouteTable:
    """Read and validate the file at `path`; SettingsError on any problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SettingsError.at(str(path), 0, f"cannot read the file: {exc.strerror}") from None
    return parse_route_table(
        data, str(path), auth_kinds=auth_kinds, builtin_upstreams=builtin_upstreams
    )


def parse_route_table(
    data: bytes | str,
    source: str = "routes.yaml",
    *,
    auth_kinds: Collection[AuthKind] = SUPPORTED_AUTH_KINDS,
    builtin_upstreams: Collection[str] = BUILTIN_UPSTREAMS,
) -> RouteTable:
    """Validate the text of a routes.yaml; `auth_kinds` are those this build can enforce."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        root = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise SettingsError.at(source, line, f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SettingsError.at(source, 0, f"not valid YAML: {exc}") from None
    if root is None:
        raise SettingsError.at(source, 1, "the file is empty")
    walk = _Walker(source)
    top = walk.mapping(root, "the top level", TOP_LEVEL_KEYS)

    if "version" not in top:
        raise walk.fail(root, "missing 'version: 1'")
    version_node = top["version"][1]
    version = walk.scalar(version_node)
    if isinstance(version, bool) or version != 1:
        raise walk.fail(version_node, "version must be 1")

    upstreams = _upstreams(walk, top, builtin_upstreams)
    if "routes" not in top:
        raise walk.fail(root, "missing 'routes'")
    underscores = (
        walk.boolean(top["underscores_in_headers"][1], "underscores_in_headers")
        if "underscores_in_headers" in top
        else False
    )
    routes = _routes(walk, top["routes"][1], upstreams, builtin_upstreams, auth_kinds, underscores)
    origins = _origins(walk, top["origins"][1]) if "origins" in top else OriginWhitelist(())
    table = RouteTable(
        routes=tuple(routes),
        upstreams=upstreams,
        origins=origins,
        sha256=hashlib.sha256(raw).hexdigest(),
        source=source,
    )
    if "metrics" in top:
        allow = _metrics_allow(walk, top["metrics"][1])
        table = RouteTable(
            routes=table.routes,
            upstreams=upstreams,
            origins=origins,
            metrics_allow=allow,
            sha256=table.sha256,
            source=source,
        )
    return table


def _upstreams(
    walk: _Walker, top: dict[str, tuple[yaml.Node, yaml.Node]], builtin: Collection[str]
) -> dict[str, Upstream]:
    if "upstreams" not in top:
        return {}
    key_node, node = top["upstreams"]
    if not isinstance(node, yaml.MappingNode):
        raise walk.fail(node, "upstreams must be a mapping of name to settings")
    result: dict[str, Upstream] = {}
    for name_node, spec_node in node.value:
        name = walk.string(name_node, "an upstream name")
        where = f"upstreams.{name}"
        if name in result:
            raise walk.fail(name_node, f"duplicate upstream '{name}'")
        if name in builtin:
            raise walk.fail(name_node, f"'{name}' is the built-in upstream; choose another name")
        if name == FORWARD_AUTH_AUDIENCE:
            raise walk.fail(name_node, f"'{name}' is forwardAuth's audience; choose another name")
        if not _UPSTREAM_NAME.fullmatch(name):
            # The name is the audience of signed contexts, written into X-Gateway-Signature.
            raise walk.fail(
                name_node, f"upstream name '{name}': use 1-64 of A-Z a-z 0-9 . _ - (no comma)"
            )
        spec = walk.mapping(spec_node, where, UPSTREAM_KEYS)
        if "targets" not in spec:
            raise walk.fail(spec_node, f"{where}: missing 'targets'")
        targets = [
            _target(walk, item, f"{where}.targets[{i}]", value)
            for i, (item, value) in enumerate(walk.strings(spec["targets"][1], f"{where}.targets"))
        ]
        if not targets:
            raise walk.fail(spec["targets"][1], f"{where}.targets must not be empty")
        options: dict[str, Any] = {}
        for key in ("connect_timeout", "timeout", "fail_timeout", "idle_timeout"):
            if key in spec:
                options[key] = walk.converted(spec[key][1], f"{where}.{key}", parse_duration)
        for key in ("max_fails", "keepalive"):
            if key in spec:
                options[key] = walk.integer(spec[key][1], f"{where}.{key}", minimum=0)
        result[name] = Upstream(name=name, targets=tuple(targets), **options)
    del key_node
    return result


def _target(walk: _Walker, node: yaml.Node, where: str, value: str) -> Target:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise walk.fail(node, f"{where}: '{value}' is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise walk.fail(node, f"{where}: '{value}' must look like http://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise walk.fail(node, f"{where}: '{value}' must be scheme://host:port and nothing more")
    default = 443 if parts.scheme == "https" else 80
    return Target(url=value, scheme=parts.scheme, host=parts.hostname, port=port or default)


def _routes(
    walk: _Walker,
    node: yaml.Node,
    upstreams: dict[str, Upstream],
    builtin: Collection[str],
    auth_kinds: Collection[AuthKind],
    underscores: bool,
) -> list[Route]:
    routes: list[Route] = []
    names: set[str] = set()
    claimed: dict[tuple[str, str | None], list[tuple[Route, yaml.Node]]] = {}
    for index, item in enumerate(walk.sequence(node, "routes")):
        route = _route(walk, item, f"routes[{index}]", upstreams, builtin, auth_kinds, underscores)
        if route.name in names:
            raise walk.fail(item, f"routes[{index}]: duplicate route name '{route.name}'")
        names.add(route.name)
        for other, _ in claimed.get((route.path, route.host), []):
            if (
                other.methods is None
                or route.methods is None
                or _with_head(other.methods) & _with_head(route.methods)
            ):
                raise walk.fail(
                    item,
                    f"routes[{index}] ({route.name}): same path, host and methods as route "
                    f"'{other.name}' at line {other.line}; one of them could never match",
                )
        claimed.setdefault((route.path, route.host), []).append((route, item))
        routes.append(route)
    return routes


def _route(
    walk: _Walker,
    node: yaml.Node,
    where: str,
    upstreams: dict[str, Upstream],
    builtin: Collection[str],
    auth_kinds: Collection[AuthKind],
    underscores: bool,
) -> Route:
    spec = walk.mapping(node, where, ROUTE_KEYS)
    for key in ("name", "path", "upstream", "auth"):
        if key not in spec:
            raise walk.fail(node, f"{where}: missing '{key}'")
    name = walk.string(spec["name"][1], f"{where}.name")
    where = f"{where} ({name})"
    path_node = spec["path"][1]
    path = walk.string(path_node, f"{where}.path")
    try:
        canonical = canonical_path(path) if path.startswith("/") else None
    except PathError:
        canonical = None
    if canonical is None or canonical != path or (path != "/" and path.endswith("/")):
        raise walk.fail(
            path_node,
            f"{where}.path: '{path}' must be a canonical path such as /v1/items "
            "(leading slash, no trailing slash, no dot segments, repeated slashes or escapes)",
        )

    upstream_node = spec["upstream"][1]
    upstream = walk.string(upstream_node, f"{where}.upstream")
    if upstream not in upstreams and upstream not in builtin:
        known = ", ".join(sorted([*upstreams, *builtin])) or "none defined"
        raise walk.fail(upstream_node, f"{where}.upstream: unknown upstream '{upstream}' ({known})")

    auth_node = spec["auth"][1]
    auth_value = walk.string(auth_node, f"{where}.auth")
    try:
        auth = AuthKind(auth_value)
    except ValueError:
        choices = " | ".join(kind.value for kind in AuthKind)
        raise walk.fail(
            auth_node, f"{where}.auth: '{auth_value}' is not one of {choices}"
        ) from None
    if auth not in auth_kinds:
        raise walk.fail(auth_node, f"{where}.auth: '{auth}' is not available in this version")

    options: dict[str, Any] = {"underscores_in_headers": underscores}  # the top level's
    if "methods" in spec:
        options["methods"] = _methods(walk, spec["methods"][1], f"{where}.methods")
    if "host" in spec:
        options["host"] = _host(walk, spec["host"][1], f"{where}.host")
    for key in ("strip_prefix", "websocket", "forward_credentials", "underscores_in_headers"):
        if key in spec:
            options[key] = walk.boolean(spec[key][1], f"{where}.{key}")
    if options.get("forward_credentials") and (auth == AuthKind.NONE or upstream in builtin):
        raise walk.fail(
            spec["forward_credentials"][1],
            f"{where}.forward_credentials: only for a route that authenticates and proxies "
            "(auth: none forwards every header as it is; the built-in upstream has no hop)",
        )
    if options.get("websocket") and upstream in builtin:
        raise walk.fail(
            spec["websocket"][1], f"{where}.websocket: the built-in upstream takes no websockets"
        )
    if "timeout" in spec:
        options["timeout"] = walk.converted(spec["timeout"][1], f"{where}.timeout", parse_duration)
    if "max_body" in spec:
        options["max_body"] = walk.converted(spec["max_body"][1], f"{where}.max_body", parse_size)
    if "cors" in spec:
        options["cors"] = _cors(walk, spec["cors"][1], f"{where}.cors")
    if "rate_limit" in spec:
        options["rate_limits"] = _rate_limits(walk, spec["rate_limit"][1], f"{where}.rate_limit")
    if "roles" in spec:
        roles = frozenset(value for _, value in walk.strings(spec["roles"][1], f"{where}.roles"))
        if auth == AuthKind.NONE and roles:
            raise walk.fail(
                spec["roles"][1], f"{where}.roles: a route with auth: none has no roles"
            )
        options["roles"] = roles
    return Route(
        name=name,
        path=path,
        upstream=upstream,
        auth=auth,
        line=node.start_mark.line + 1,
        **options,
    )


def _rate_limits(walk: _Walker, node: yaml.Node, where: str) -> tuple[RateRule, ...]:
    """One `{key, limit, per}` or a list of them (layered: every one must have room)."""
    items = walk.sequence(node, where) if isinstance(node, yaml.SequenceNode) else [node]
    if not items or len(items) > MAX_RATE_LIMITS:
        raise walk.fail(node, f"{where}: one to {MAX_RATE_LIMITS} limits")
    rules: list[RateRule] = []
    for index, item in enumerate(items):
        here = f"{where}[{index}]" if isinstance(node, yaml.SequenceNode) else where
        spec = walk.mapping(item, here, RATE_LIMIT_KEYS)
        for key in RATE_LIMIT_KEYS:
            if key not in spec:
                raise walk.fail(item, f"{here}: missing '{key}'")
        key_node = spec["key"][1]
        key = walk.string(key_node, f"{here}.key")
        if key not in RATE_KEYS:
            raise walk.fail(key_node, f"{here}.key: '{key}' is not one of {' | '.join(RATE_KEYS)}")
        limit = walk.integer(spec["limit"][1], f"{here}.limit")
        per = walk.converted(spec["per"][1], f"{here}.per", parse_duration)
        rule = RateRule(key, Rate(limit, per))
        if rule in rules:
            raise walk.fail(item, f"{here}: the same limit twice")
        rules.append(rule)
    return tuple(rules)


def _with_head(methods: frozenset[str]) -> frozenset[str]:
    # A route allowing GET answers HEAD too: another route cannot take HEAD on the same path.
    return methods | {"HEAD"} if "GET" in methods else methods


def _methods(walk: _Walker, node: yaml.Node, where: str) -> frozenset[str]:
    methods: set[str] = set()
    for item, value in walk.strings(node, where):
        method = value.upper()
        if method not in HTTP_METHODS:
            raise walk.fail(item, f"{where}: '{value}' is not an HTTP method")
        methods.add(method)
    if not methods:
        raise walk.fail(node, f"{where} must not be empty (leave it out to allow every method)")
    return frozenset(methods)


def _host(walk: _Walker, node: yaml.Node, where: str) -> str:
    host = walk.string(node, where).lower()
    bare = host[2:] if host.startswith("*.") else host
    labels = bare.split(".")
    if not all(label and label.replace("-", "").isalnum() for label in labels):
        raise walk.fail(node, f"{where}: '{host}' must be a host name such as api.example.com")
    return host


def _origins(walk: _Walker, node: yaml.Node, where: str = "origins") -> OriginWhitelist:
    entries = []
    for item, value in walk.strings(node, where):
        if normalise_origin(value.replace("://*.", "://wildcard.", 1)) is None:
            raise walk.fail(
                item,
                f"{where}: '{value}' must be an origin such as https://app.example.com "
                "(or https://*.example.com for its subdomains)",
            )
        entries.append(value)
    return OriginWhitelist(entries)


_UPSTREAM_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def _cors(walk: _Walker, node: yaml.Node, where: str) -> CorsPolicy:
    spec = walk.mapping(node, where, CORS_KEYS)
    if "origins" not in spec:
        raise walk.fail(node, f"{where}: missing 'origins'")
    origins = _origins(walk, spec["origins"][1], f"{where}.origins")
    if not origins:
        raise walk.fail(spec["origins"][1], f"{where}.origins must not be empty")
    options: dict[str, Any] = {}
    if "methods" in spec:
        options["methods"] = _methods(walk, spec["methods"][1], f"{where}.methods")
    for key in ("headers", "expose"):
        if key in spec:
            names = []
            for item, value in walk.strings(spec[key][1], f"{where}.{key}"):
                if not _HEADER_NAME.fullmatch(value):
                    raise walk.fail(item, f"{where}.{key}: '{value}' is not a header name")
                names.append(value)
            options[key] = tuple(names)
    if "credentials" in spec:
        options["credentials"] = walk.boolean(spec["credentials"][1], f"{where}.credentials")
    if "max_age" in spec:
        options["max_age"] = int(
            walk.converted(spec["max_age"][1], f"{where}.max_age", parse_duration)
        )
    return CorsPolicy(origins, **options)


def _metrics_allow(walk: _Walker, node: yaml.Node) -> netaddr.IPSet:
    spec = walk.mapping(node, "metrics", ("allow",))
    if "allow" not in spec:
        return netaddr.IPSet(["127.0.0.0/8", "::1/128"])
    return _cidrs(walk, walk.strings(spec["allow"][1], "metrics.allow"), "metrics.allow")


def _cidrs(walk: _Walker, items: Iterable[tuple[yaml.Node, str]], where: str) -> netaddr.IPSet:
    networks = []
    for item, value in items:
        try:
            networks.append(netaddr.IPNetwork(value))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            raise walk.fail(item, f"{where}: '{value}' is not an IP address or CIDR") from None
    return netaddr.IPSet(networks)
