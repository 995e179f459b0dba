"""Every class in the auth core has a name of its own, so that a name says which thing it is.

A store table and the service over it used to share names (`Sessions`, `Tenants`, `ApiKeys`,
`Pats`); an import of the wrong one type-checked as long as the methods happened to match.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import auth_core

PACKAGE = Path(auth_core.__file__).parent


def test_no_class_name_is_defined_twice_in_the_auth_core() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(str(path.relative_to(PACKAGE)))
    assert len(where) > 50  # the walk found the package's classes
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
