"""routes.yaml's `upstreams`: each name, its targets, its connection options and its TLS."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

import yaml

from auth_core.units import parse_duration
from gateway.routing.schema import DURATION, INTEGER, UPSTREAM
from gateway.routing.table import FORWARD_AUTH_AUDIENCE, Target, Upstream
from gateway.routing.upstream_tls import TlsReader
from gateway.routing.yaml_walk import NodeWalker

UPSTREAM_KEYS = UPSTREAM.keys
# Names are the audience of signed contexts (X-Gateway-Signature): no comma, bounded.
UPSTREAM_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def read_upstreams(
    walk: NodeWalker, top: dict[str, tuple[yaml.Node, yaml.Node]], builtin: Collection[str]
) -> dict[str, Upstream]:
    if "upstreams" not in top:
        return {}
    key_node, node = top["upstreams"]
    if not isinstance(node, yaml.MappingNode):
        raise walk.fail(node, "upstreams must be a mapping of name to settings")
    result: dict[str, Upstream] = {}
    tls = TlsReader(walk)
    for name_node, spec_node in node.value:
        name = walk.string(name_node, "an upstream name")
        where = f"upstreams.{name}"
        if name in result:
            raise walk.fail(name_node, f"duplicate upstream '{name}'")
        if name in builtin:
            raise walk.fail(name_node, f"'{name}' is the built-in upstream; choose another name")
        if name == FORWARD_AUTH_AUDIENCE:
            raise walk.fail(name_node, f"'{name}' is forwardAuth's audience; choose another name")
        if not UPSTREAM_NAME_RE.fullmatch(name):
            # The name is the audience of signed contexts, written into X-Gateway-Signature.
            raise walk.fail(
                name_node, f"upstream name '{name}': use 1-64 of A-Z a-z 0-9 . _ - (no comma)"
            )
        spec = walk.mapping(spec_node, where, UPSTREAM_KEYS)
        if "targets" not in spec:
            raise walk.fail(spec_node, f"{where}: missing 'targets'")
        targets = [
            (item, read_target(walk, item, f"{where}.targets[{i}]", value))
            for i, (item, value) in enumerate(walk.strings(spec["targets"][1], f"{where}.targets"))
        ]
        if not targets:
            raise walk.fail(spec["targets"][1], f"{where}.targets must not be empty")
        options: dict[str, Any] = {}
        for key in UPSTREAM.of_type(DURATION):
            if key in spec:
                options[key] = walk.converted(spec[key][1], f"{where}.{key}", parse_duration)
        for key in UPSTREAM.of_type(INTEGER):
            if key in spec:
                options[key] = walk.integer(spec[key][1], f"{where}.{key}", minimum=0)
        options["tls"] = tls.read(spec.get("tls"), where, targets)
        result[name] = Upstream(
            name=name, targets=tuple(target for _, target in targets), **options
        )
    del key_node
    return result


def read_target(walk: NodeWalker, node: yaml.Node, where: str, value: str) -> Target:
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
