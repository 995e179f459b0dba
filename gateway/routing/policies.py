"""The policies a route or the top level of routes.yaml carries: methods, host, origins, CORS,
rate limits and the CIDRs allowed to read the metrics; each read from its YAML node, with the
node's line in any error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import netaddr
import yaml

from auth_core.limits import Rate
from auth_core.origins import OriginWhitelist, normalise_origin
from auth_core.units import parse_duration
from gateway.routing.schema import CORS, METRICS, RATE_LIMIT
from gateway.routing.table import RATE_KEYS, CorsPolicy, RateRule
from gateway.routing.yaml_walk import NodeWalker

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
# A route's `cors` and `rate_limit` entries.
CORS_KEYS = CORS.keys
RATE_LIMIT_KEYS = RATE_LIMIT.keys
MAX_RATE_LIMITS = 4
# RFC 9110 section 5.1: a header name is a token.
HEADER_NAME_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def read_rate_limits(walk: NodeWalker, node: yaml.Node, where: str) -> tuple[RateRule, ...]:
    """One `{key, limit, per}` or a list of them (layered: every one must have room)."""
    items = walk.sequence(node, where) if isinstance(node, yaml.SequenceNode) else [node]
    if not items or len(items) > MAX_RATE_LIMITS:
        raise walk.fail(node, f"{where}: one to {MAX_RATE_LIMITS} limits")
    rules: list[RateRule] = []
    for index, item in enumerate(items):
        here = f"{where}[{index}]" if isinstance(node, yaml.SequenceNode) else where
        spec = walk.mapping(item, here, RATE_LIMIT_KEYS)
        for key in RATE_LIMIT.required:
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


def read_methods(walk: NodeWalker, node: yaml.Node, where: str) -> frozenset[str]:
    methods: set[str] = set()
    for item, value in walk.strings(node, where):
        method = value.upper()
        if method not in HTTP_METHODS:
            raise walk.fail(item, f"{where}: '{value}' is not an HTTP method")
        methods.add(method)
    if not methods:
        raise walk.fail(node, f"{where} must not be empty (leave it out to allow every method)")
    return frozenset(methods)


def read_host(walk: NodeWalker, node: yaml.Node, where: str) -> str:
    host = walk.string(node, where).lower()
    bare = host[2:] if host.startswith("*.") else host
    labels = bare.split(".")
    if not all(label and label.replace("-", "").isalnum() for label in labels):
        raise walk.fail(node, f"{where}: '{host}' must be a host name such as api.example.com")
    return host


def read_origins(walk: NodeWalker, node: yaml.Node, where: str = "origins") -> OriginWhitelist:
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


def read_cors(walk: NodeWalker, node: yaml.Node, where: str) -> CorsPolicy:
    spec = walk.mapping(node, where, CORS_KEYS)
    if "origins" not in spec:
        raise walk.fail(node, f"{where}: missing 'origins'")
    origins = read_origins(walk, spec["origins"][1], f"{where}.origins")
    if not origins:
        raise walk.fail(spec["origins"][1], f"{where}.origins must not be empty")
    options: dict[str, Any] = {}
    if "methods" in spec:
        options["methods"] = read_methods(walk, spec["methods"][1], f"{where}.methods")
    for key in ("headers", "expose"):
        if key in spec:
            names = []
            for item, value in walk.strings(spec[key][1], f"{where}.{key}"):
                if not HEADER_NAME_RE.fullmatch(value):
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


def read_metrics_allow(walk: NodeWalker, node: yaml.Node) -> netaddr.IPSet:
    spec = walk.mapping(node, "metrics", METRICS.keys)
    if "allow" not in spec:
        return netaddr.IPSet(["127.0.0.0/8", "::1/128"])
    return read_cidrs(walk, walk.strings(spec["allow"][1], "metrics.allow"), "metrics.allow")


def read_cidrs(
    walk: NodeWalker, items: Iterable[tuple[yaml.Node, str]], where: str
) -> netaddr.IPSet:
    networks = []
    for item, value in items:
        try:
            networks.append(netaddr.IPNetwork(value))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            raise walk.fail(item, f"{where}: '{value}' is not an IP address or CIDR") from None
    return netaddr.IPSet(networks)
