"""The canonical form of a request path, and the split of a request target (docs/routes.md)."""

from __future__ import annotations

import random
import re

import pytest

from gateway.routing.paths import PathError, canonical_path, split_target
from tests.support import cases

REJECTED = None  # the path has no safe canonical form: PathError

CANONICAL = [
    # (description, path, canonical form or REJECTED)
    ("root", "/", "/"),
    ("already canonical", "/v1/conversations/7", "/v1/conversations/7"),
    ("trailing slash kept", "/a/", "/a/"),
    ("dot segment", "/a/./b", "/a/b"),
    ("dot-dot segment", "/a/../b", "/b"),
    ("dot-dot above the root is clamped", "/../a", "/a"),
    ("many dot-dots above the root", "/a/b/../../../../c", "/c"),
    ("trailing dot-dot leaves a slash", "/a/b/..", "/a/"),
    ("trailing dot-dot to the root", "/a/..", "/"),
    ("trailing dot leaves a slash", "/a/.", "/a/"),
    ("dot then slash", "/a/./", "/a/"),
    ("only dot-dots", "/../..", "/"),
    ("repeated slashes fold", "/a//b", "/a/b"),
    ("leading repeated slashes fold", "//a", "/a"),
    ("many slashes fold", "///a////b///", "/a/b/"),
    ("only slashes", "//", "/"),
    ("three dots is a name", "/a/.../b", "/a/.../b"),
    ("dots inside a name", "/a/..b/c..", "/a/..b/c.."),
    ("%2e%2e resolves", "/a/%2e%2e/b", "/b"),
    ("%2E%2E resolves", "/a/%2E%2E/b", "/b"),
    ("mixed .%2e resolves", "/a/.%2e/b", "/b"),
    ("mixed %2e. resolves", "/a/%2e./b", "/b"),
    ("%2e is a dot segment", "/a/%2e/b", "/a/b"),
    ("%2e%2e%2e is a name", "/a/%2e%2e%2e", "/a/..."),
    ("%2e inside a name decoded", "/file%2ejson", "/file.json"),
    ("%2f rejected", "/a%2fb", REJECTED),
    ("%2F rejected", "/a%2Fb", REJECTED),
    ("..%2f rejected", "/a/..%2fb", REJECTED),
    ("%5c rejected", "/a%5cb", REJECTED),
    ("%5C rejected", "/a%5Cb", REJECTED),
    ("%00 rejected", "/a%00", REJECTED),
    ("%0a rejected", "/a%0a", REJECTED),
    ("%0D%0A rejected", "/a%0D%0AX:%201", REJECTED),
    ("%09 rejected", "/a%09", REJECTED),
    ("%1f rejected", "/a%1f", REJECTED),
    ("%7f rejected", "/a%7f", REJECTED),
    ("%7F rejected", "/a%7F", REJECTED),
    ("raw backslash rejected", "/a\\b", REJECTED),
    ("raw backslash dot-dot rejected", "/a\\..\\b", REJECTED),
    ("raw NUL rejected", "/a\x00", REJECTED),
    ("raw tab rejected", "/a\tb", REJECTED),
    ("raw DEL rejected", "/a\x7f", REJECTED),
    ("raw space rejected", "/a b", REJECTED),
    ("malformed escape %zz", "/a%zz", REJECTED),
    ("malformed escape %g0", "/a%g0", REJECTED),
    ("short escape %4", "/a%4", REJECTED),
    ("short escape %4 mid-path", "/a%4/b", REJECTED),
    ("trailing %", "/a%", REJECTED),
    ("lone % mid-path", "/a%/b", REJECTED),
    ("%41 is A", "/%41", "/A"),
    ("%61dmin is admin", "/%61dmin", "/admin"),
    ("%7e is ~", "/%7e", "/~"),
    ("%7E is ~", "/%7E", "/~"),
    ("%2d %5f decoded", "/a%2db%5fc", "/a-b_c"),
    ("digits decoded", "/v%31", "/v1"),
    ("%3f kept, upper-cased", "/a%3fb", "/a%3Fb"),
    ("%3F kept", "/a%3Fb", "/a%3Fb"),
    ("%20 kept", "/a%20b", "/a%20b"),
    ("%25 kept, not decoded twice", "/a%252e%252e", "/a%252e%252e"),
    ("%3b kept, upper-cased", "/a%3bb", "/a%3Bb"),
    ("UTF-8 escapes kept, upper-cased", "/caf%c3%a9", "/caf%C3%A9"),
    ("%23 kept", "/a%23b", "/a%23b"),
    ("..; segment rejected", "/a/..;/b", REJECTED),
    ("..;x segment rejected", "/a/..;x/b", REJECTED),
    (".;x segment rejected", "/a/.;x/b", REJECTED),
    ("trailing ..; rejected", "/a/..;", REJECTED),
    ("%2e%2e; segment rejected", "/a/%2e%2e;/b", REJECTED),
    ("path parameter refused", "/a;x/b", REJECTED),
    ("fragment rejected", "/a#b", REJECTED),
    ("empty fragment rejected", "/a#", REJECTED),
    ("fragment after dots rejected", "/a/../b#x", REJECTED),
    ("non-ASCII rejected", "/caf\u00e9", REJECTED),
    ("non-ASCII with dots rejected", "/a/../\u00e9", REJECTED),
    ("non-BMP rejected", "/\U0001f600", REJECTED),
]


@pytest.mark.parametrize(("path", "expected"), cases(CANONICAL))
def test_canonical_path(path: str, expected: str | None) -> None:
    if expected is REJECTED:
        with pytest.raises(PathError):
            canonical_path(path)
    else:
        assert canonical_path(path) == expected


ACCEPTED = [case for case in CANONICAL if case[2] is not REJECTED]


@pytest.mark.parametrize("path", [case[1] for case in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_canonical_path_is_idempotent(path: str) -> None:
    once = canonical_path(path)
    assert canonical_path(once) == once


def test_path_error_is_a_value_error_with_a_safe_message() -> None:
    with pytest.raises(ValueError, match="not allowed") as caught:
        canonical_path("/a%2fb")
    assert isinstance(caught.value, PathError)


# -- property: random paths built from the awkward pieces ---------------------------------------

PIECES = [
    "/", "//", ".", "..", "%2e", "%2E", "%2e%2e", "a", "B", "v1", "%41", "%7e", "%3f", "%20",
    "%25", "%2f", "%5c", "%00", "%zz", "%", ";", "..;", "~", "-", "_", "\\", "\u00e9", "#",
]  # fmt: skip
UNRESERVED_ESCAPE = re.compile(r"%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2D|2E|5F|7E)")


def _random_paths(count: int) -> list[str]:
    rng = random.Random(20240605)
    return ["/" + "".join(rng.choices(PIECES, k=rng.randint(1, 10))) for _ in range(count)]


def test_canonical_path_properties_over_random_paths() -> None:
    accepted = 0
    for path in _random_paths(3000):
        try:
            once = canonical_path(path)
        except PathError:
            continue
        accepted += 1
        assert canonical_path(once) == once, path
        assert once.startswith("/"), path
        assert "//" not in once, path
        segments = once.split("/")
        assert "." not in segments, path
        assert ".." not in segments, path
        assert once.isascii(), path
        assert "\\" not in once, path
        assert "#" not in once, path
        # every escape left is well formed, upper-case, and not of an unreserved character
        for escape in re.findall(r"%.{0,2}", once):
            assert re.fullmatch(r"%[0-9A-F]{2}", escape), (path, once)
            assert not UNRESERVED_ESCAPE.fullmatch(escape), (path, once)
            assert escape.upper() not in ("%2F", "%5C", "%00", "%7F"), (path, once)
    assert accepted > 300  # the generator does reach the accepting side


# -- split_target -----------------------------------------------------------------------------

SPLITS = [
    # (description, target, (path, query) or REJECTED)
    ("no query", "/a/b", ("/a/b", "")),
    ("query keeps its ?", "/a?b=1", ("/a", "?b=1")),
    ("empty query", "/a?", ("/a", "?")),
    ("root with query", "/?x", ("/", "?x")),
    ("query kept exactly, odd bytes", "/a?a=%zz&b=..%2f", ("/a", "?a=%zz&b=..%2f")),
    ("dots and slashes in the query untouched", "/p?x=/../admin", ("/p", "?x=/../admin")),
    ("second ? belongs to the query", "/a?x?y", ("/a", "?x?y")),
    ("query with backslash and %00 untouched", "/a?x=\\%00", ("/a", "?x=\\%00")),
    ("path is not canonicalised here", "/a/../b?c", ("/a/../b", "?c")),
    ("absolute-form rejected", "http://example.com/a", REJECTED),
    ("absolute-form https rejected", "https://example.com/", REJECTED),
    ("asterisk-form rejected", "*", REJECTED),
    ("relative path rejected", "a/b", REJECTED),
    ("authority-form rejected", "example.com:443", REJECTED),
    ("empty target rejected", "", REJECTED),
    ("query only rejected", "?a=1", REJECTED),
]


@pytest.mark.parametrize(("target", "expected"), cases(SPLITS))
def test_split_target(target: str, expected: tuple[str, str] | None) -> None:
    if expected is REJECTED:
        with pytest.raises(PathError):
            split_target(target)
    else:
        assert split_target(target) == expected
