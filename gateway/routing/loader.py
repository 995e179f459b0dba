"""routes.yaml -> RouteTable, validated once, with `file:line: reason` for every mistake.

This module reads the top level and the routes; the YAML walking is in yaml_walk, the upstreams
in upstreams and the policies a route carries (CORS, rate limits, CIDRs ...) in policies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

from auth_core.errors import SettingsError
from auth_core.origins import OriginWhitelist
from auth_core.units import parse_duration, parse_size
from gateway.routing.paths import PathError, canonical_path
from gateway.routing.policies import (
    read_cors,
    read_host,
    read_methods,
    read_metrics_allow,
    read_origins,
    read_rate_limits,
)
from gateway.routing.schema import BOOLEAN, ROUTE, TOP_LEVEL
from gateway.routing.table import (
    BUILTIN_UPSTREAMS,
    SUPPORTED_AUTH_KINDS,
    AuthKind,
    Route,
    RouteTable,
    Upstream,
)
from gateway.routing.upstreams import read_upstreams
from gateway.routing.yaml_walk import NodeWalker, compose

__all__ = ["load_route_table", "parse_route_table"]

TOP_LEVEL_KEYS = TOP_LEVEL.keys
ROUTE_KEYS = ROUTE.keys
# Kinds whose callers can be end users in a browser: the session cookie stands for one.
BROWSER_AUTH_KINDS = frozenset({AuthKind.JWT, AuthKind.ANY})


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
    root = compose(raw, source)
    walk = NodeWalker(source)
    top = walk.mapping(root, "the top level", TOP_LEVEL_KEYS)

    if "version" not in top:
        raise walk.fail(root, "missing 'version: 1'")
    version_node = top["version"][1]
    version = walk.scalar(version_node)
    if isinstance(version, bool) or version != 1:
        raise walk.fail(version_node, "version must be 1")

    upstreams = read_upstreams(walk, top, builtin_upstreams)
    if "routes" not in top:
        raise walk.fail(root, "missing 'routes'")
    underscores = (
        walk.boolean(top["underscores_in_headers"][1], "underscores_in_headers")
        if "underscores_in_headers" in top
        else False
    )
    routes = _routes(walk, top["routes"][1], upstreams, builtin_upstreams, auth_kinds, underscores)
    origins = read_origins(walk, top["origins"][1]) if "origins" in top else OriginWhitelist(())
    table = RouteTable(
        routes=tuple(routes),
        upstreams=upstreams,
        origins=origins,
        sha256=hashlib.sha256(raw).hexdigest(),
        source=source,
    )
    if "metrics" in top:
        allow = read_metrics_allow(walk, top["metrics"][1])
        table = RouteTable(
            routes=table.routes,
            upstreams=upstreams,
            origins=origins,
            metrics_allow=allow,
            sha256=table.sha256,
            source=source,
        )
    return table


def _routes(
    walk: NodeWalker,
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
    walk: NodeWalker,
    node: yaml.Node,
    where: str,
    upstreams: dict[str, Upstream],
    builtin: Collection[str],
    auth_kinds: Collection[AuthKind],
    underscores: bool,
) -> Route:
    spec = walk.mapping(node, where, ROUTE_KEYS)
    for key in ROUTE.required:
        if key not in spec:
            raise walk.fail(node, f"{where}: missing '{key}'")
    name = walk.string(spec["name"][1], f"{where}.name")
    if name.startswith("@"):
        # Metrics and access logs name what answered a request without a route @live, @banned...
        raise walk.fail(spec["name"][1], f"{where}.name: '{name}' may not begin with @")
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
        options["methods"] = read_methods(walk, spec["methods"][1], f"{where}.methods")
    if "host" in spec:
        options["host"] = read_host(walk, spec["host"][1], f"{where}.host")
    for key in ROUTE.of_type(BOOLEAN):
        if key in spec:
            options[key] = walk.boolean(spec[key][1], f"{where}.{key}")
    if options.get("forward_credentials") and (auth == AuthKind.NONE or upstream in builtin):
        raise walk.fail(
            spec["forward_credentials"][1],
            f"{where}.forward_credentials: only for a route that authenticates and proxies "
            "(auth: none forwards every header as it is; the built-in upstream has no hop)",
        )
    if options.get("browser") and (auth not in BROWSER_AUTH_KINDS or upstream in builtin):
        raise walk.fail(
            spec["browser"][1],
            f"{where}.browser: only for a route with auth: jwt or any to an upstream of its own "
            "(the session cookie stands for a user; the built-in upstream reads bearer tokens)",
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
        options["cors"] = read_cors(walk, spec["cors"][1], f"{where}.cors")
    if "rate_limit" in spec:
        options["rate_limits"] = read_rate_limits(
            walk, spec["rate_limit"][1], f"{where}.rate_limit"
        )
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


def _with_head(methods: frozenset[str]) -> frozenset[str]:
    # A route allowing GET answers HEAD too: another route cannot take HEAD on the same path.
    return methods | {"HEAD"} if "GET" in methods else methods
