"""Walking routes.yaml's YAML nodes by hand, so that every mistake says `file:line: reason`.

The file is composed into nodes (which keep their line numbers) rather than loaded into plain
values, and mappings refuse unknown or duplicate keys rather than ignore them (a misspelt `auth`
must never make a route public). The policies and the route table are read on top of this.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

import yaml

from auth_core.errors import SettingsError

T = TypeVar("T")


class NodeWalker:
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


def compose(raw: bytes, source: str) -> yaml.Node:
    """The root node of the document; SettingsError if it is not YAML or is empty."""
    try:
        root = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise SettingsError.at(source, line, f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SettingsError.at(source, 0, f"not valid YAML: {exc}") from None
    if root is None:
        raise SettingsError.at(source, 1, "the file is empty")
    return root
