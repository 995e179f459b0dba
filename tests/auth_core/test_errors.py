"""The error tree drawn in auth_core/errors.py's docstring is the tree of its classes."""

from __future__ import annotations

import re

import pytest

from auth_core import errors
from auth_core.errors import (
    ErrorCode,
    GatewayError,
    InvalidCredentials,
    InvalidRequest,
    MethodNotAllowed,
    MissingCredentials,
    RateLimited,
    TokenExpired,
)

# One line of the drawing: the indent that places it in the tree, the class name, the status
# and, for classes that have one, the code.
_LINE = re.compile(
    r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)\s+(?P<status>\d{3})\b\s*(?P<code>[a-z_]*)"
)


def drawn_tree() -> dict[str, tuple[str | None, int, str]]:
    """Each drawn class: its parent's name (None for the root), its status and its code."""
    assert errors.__doc__ is not None
    tree: dict[str, tuple[str | None, int, str]] = {}
    parents: list[tuple[int, str]] = []  # (depth, name) along the current branch
    for line in errors.__doc__.splitlines():
        found = _LINE.match(line.removeprefix("    "))
        if found is None:
            continue
        depth = len(found["indent"])
        while parents and parents[-1][0] >= depth:
            parents.pop()
        parent = parents[-1][1] if parents else None
        tree[found["name"]] = (parent, int(found["status"]), found["code"])
        parents.append((depth, found["name"]))
    return tree


def real_tree() -> dict[str, tuple[str | None, int, str]]:
    tree: dict[str, tuple[str | None, int, str]] = {}

    def walk(cls: type[GatewayError], parent: str | None) -> None:
        # A class that names no code of its own (Unauthorized) is drawn without one.
        code = cls.CODE.value if "CODE" in vars(cls) or parent is None else ""
        tree[cls.__name__] = (parent, cls.STATUS, code)
        for sub in cls.__subclasses__():
            if sub.__module__ == errors.__name__:
                walk(sub, cls.__name__)

    walk(GatewayError, None)
    return tree


def test_the_drawing_is_the_tree_of_classes() -> None:
    drawn = drawn_tree()
    assert len(drawn) == 25
    assert drawn["GatewayError"] == (None, 500, "internal_error")
    assert drawn["TokenExpired"] == ("Unauthorized", 401, "token_expired")
    assert drawn["LastAdmin"] == ("Conflict", 409, "last_admin")
    assert drawn == real_tree()


def test_every_code_is_one_class_s() -> None:
    codes = [code for _, _, code in real_tree().values() if code]
    assert sorted(codes) == sorted(code.value for code in ErrorCode)


def test_401s_say_how_to_authenticate() -> None:
    assert MissingCredentials("no").headers == {"WWW-Authenticate": 'Bearer realm="gateway"'}
    assert TokenExpired("old").headers == {
        "WWW-Authenticate": 'Bearer realm="gateway", error="invalid_token"'
    }
    assert InvalidCredentials("no", audited=True).headers == {
        "WWW-Authenticate": 'Bearer realm="gateway", error="invalid_request"'
    }


def test_status_and_headers_of_one_answer() -> None:
    error = InvalidRequest("the request body stopped arriving", status=408)
    assert (error.status, error.code) == (408, "invalid_request")
    assert MethodNotAllowed("PUT", ["GET", "HEAD"]).headers == {"Allow": "GET, HEAD"}
    limited = RateLimited("slow down", 0.2, limit=5, policy="5;w=60")
    assert limited.headers == {
        "Retry-After": "1",
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "1",
        "RateLimit-Policy": "5;w=60",
    }


@pytest.mark.parametrize("name", ["AuthError", "AuthSettingsError", "ConfigError"])
def test_one_name_per_error(name: str) -> None:
    assert not hasattr(errors, name)
