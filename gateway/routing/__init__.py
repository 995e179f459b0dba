"""The route table: `routes.yaml` parsed once into immutable objects, and the path rules."""

from gateway.routing.loader import load_route_table, parse_route_table
from gateway.routing.paths import PathError, canonical_path, split_target
from gateway.routing.table import AuthKind, Route, RouteTable, Target, Upstream

__all__ = [
    "AuthKind",
    "PathError",
    "Route",
    "RouteTable",
    "Target",
    "Upstream",
    "canonical_path",
    "load_route_table",
    "parse_route_table",
    "split_target",
]
