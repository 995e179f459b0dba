"""The import graph of gateway, auth_core and metrics (docs/architecture.md, "Layers"): no
circle, the HTTP server below everything that uses it, the auth core and the metrics below the
gateway. Read from the sources with `ast`, so every import counts: those inside functions and
under TYPE_CHECKING too (a circle of type-only imports is still two modules that cannot be read
one without the other)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "auth_core", "metrics")

# Circles known and left for now, each with why (none: the last, the auth core's services
# reaching back into the AuthCore that built them, went with its dependency injection).
KNOWN_CIRCLES: list[frozenset[str]] = []


def modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package)."""
    found: dict[str, tuple[Path, bool]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = (path, is_package)
    return found


def imported(tree: ast.Module, package: str) -> Iterator[str]:
    """Every name an import statement of the module may load: `a.b` for `import a.b`, and
    for `from a.b import c` both `a.b` and `a.b.c` (c may be a module); relative ones
    resolved against `package`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    found = modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in found.items():
        package = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = {target for target in imported(tree, package) if target in found} - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def imports_from(graph: dict[str, set[str]], below: str, above: tuple[str, ...]) -> set[str]:
    """`module -> target` for every import of a module under `below` from one under `above`."""
    return {
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module == below or module.startswith(below + ".")
        for target in targets
        if any(target == layer or target.startswith(layer + ".") for layer in above)
    }


def test_the_graph_is_read_whole() -> None:
    """The reader finds what it must (else the tests below would pass on an empty graph):
    a plain import, a relative-free `from` import and one under TYPE_CHECKING."""
    graph = import_graph()
    assert "gateway.http.request" in graph["gateway.http.connection"]
    assert "gateway.pipeline.exchange" in graph["gateway.proxy.forward"]
    assert "gateway.http.request" in graph["gateway.http.response"]  # under TYPE_CHECKING


def test_a_circle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [frozenset({"a", "b", "c"})]


def test_no_circle_in_the_import_graph() -> None:
    found = circles(import_graph())
    unexpected = [sorted(circle) for circle in found if circle not in KNOWN_CIRCLES]
    assert unexpected == []
    gone = [sorted(circle) for circle in KNOWN_CIRCLES if circle not in found]
    assert gone == [], "a known circle is gone (or changed): update KNOWN_CIRCLES"


def test_the_http_server_imports_nothing_above_it() -> None:
    graph = import_graph()
    above = ("gateway.websocket", "gateway.proxy", "gateway.pipeline", "gateway.server")
    assert imports_from(graph, "gateway.http", above) == set()


def test_the_auth_core_and_the_metrics_never_import_the_gateway() -> None:
    graph = import_graph()
    assert imports_from(graph, "auth_core", ("gateway",)) == set()
    assert imports_from(graph, "metrics", ("gateway",)) == set()
