"""What the compiled build compiles is setup.py's list, and the extension points it compiles stay
open to plain Python subclasses (tests/gateway/pipeline/test_plain_stages.py runs one)."""

from __future__ import annotations

import ast
from pathlib import Path

# resolve(): the compiled pass runs the tests from a directory of links to this checkout.
ROOT = Path(__file__).resolve().parents[1]


def compiled_list() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [
            t.id for t in node.targets if isinstance(t, ast.Name)
        ] == ["COMPILED"]:
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(item) for item in value]
    raise AssertionError("setup.py has no COMPILED list")


def test_the_list_names_modules_one_by_one() -> None:
    listed = compiled_list()
    assert len(listed) == len(set(listed))
    for path in listed:
        assert path.endswith(".py"), f"{path}: one module a line, no directories"
        assert (ROOT / path).is_file(), f"{path} is listed in setup.py but does not exist"


def _marked_open(path: str, name: str) -> bool:
    tree = ast.parse((ROOT / path).read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Name)
                    and decorator.func.id == "mypyc_attr"
                ):
                    return any(
                        k.arg == "allow_interpreted_subclasses"
                        and isinstance(k.value, ast.Constant)
                        and k.value.value is True
                        for k in decorator.keywords
                    )
    return False


def test_compiled_extension_points_allow_plain_python_subclasses() -> None:
    listed = compiled_list()
    for path, name in [
        ("gateway/pipeline/stage.py", "Stage"),
        ("gateway/pipeline/authn/base.py", "Authenticator"),
    ]:
        assert path in listed
        assert _marked_open(path, name), (
            f"{name} in {path} is not mypyc_attr(allow_interpreted_subclasses=True)"
        )
