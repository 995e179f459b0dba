"""Header names are spelt in auth_core/headers.py and nowhere else in gateway/ and auth_core/
(docs/architecture.md, "Layers"): read from the sources with `ast`, every str or bytes literal
that is, whole and in any case, a name that module defines is a name spelt twice; so is one
with a header line of such a name (`b"Content-Length: %d\r\n"`), at its start or after a
CRLF. A docstring or message that mentions a header in a sentence is no such literal."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from auth_core import headers
from gateway import context

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "auth_core")
NAMES_MODULE = "auth_core/headers.py"

# Literals equal to a header name that are not one, or are spelt apart on purpose: (file,
# literal as written) -> why.
NOT_A_HEADER_NAME: dict[tuple[str, str], str] = {
    ("gateway/routing/loader.py", "host"): "the routes.yaml key `host`",
    ("gateway/routing/policies.py", "allow"): "the routes.yaml key `metrics.allow`",
    ("gateway/routing/schema.py", "host"): "the routes.yaml key `host`, in its schema",
    ("gateway/routing/schema.py", "allow"): "the routes.yaml key `metrics.allow`, in its schema",
    ("gateway/proxy/headers.py", "keep-alive"): "an option of Connection, not the header",
    ("gateway/demo/echo.py", "connection"): "a field of the demo upstream's JSON answer",
    ("auth_core/api/openapi.py", "cookie"): "OpenAPI's `in: cookie` (where a key is sent)",
    ("auth_core/cookie_sessions.py", "cookie"): "the X-Auth-Method of the login page's cookie",
    ("gateway/pipeline/authorize.py", "cookie"): "an X-Auth-Method, not the header",
    ("gateway/websocket/registry.py", "cookie"): "an X-Auth-Method, not the header",
}
# gateway/context.py is copied into services on its own (docs/upstream-services.md), so it spells
# the signed headers' lower-case names itself;
# test_the_signed_names_are_the_header_names holds them to this module's.
SPELT_APART = {"gateway/context.py"}


def header_names() -> set[str]:
    """Every name auth_core/headers.py defines, lower-case."""
    found = set()
    for name, value in vars(headers).items():
        if name.isupper() and isinstance(value, str | bytes):
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            found.add(text.lower())
    return found


def _skipped(tree: ast.Module) -> set[int]:
    """The ids of docstrings and `__slots__` entries (attribute names, not headers)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
        elif isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__slots__" for target in node.targets
        ):
            skipped.update(id(inner) for inner in ast.walk(node.value))
    return skipped


# A header line's name: at the start of a literal or after a CRLF, before ": ".
_LINE_NAME = re.compile(r"(?:^|\r\n)([A-Za-z0-9-]+): ")


def _names_a_header(text: str, names: set[str]) -> bool:
    """`text` is a header name, or holds a header line of one."""
    if text.lower() in names:
        return True
    return any(name.lower() in names for name in _LINE_NAME.findall(text))


def spelt_names(source: str, names: set[str]) -> Iterator[tuple[int, str]]:
    """(line, literal) for each str or bytes literal of `source` that is one of `names`
    (lower-case) or holds a header line of one, in any case."""
    tree = ast.parse(source)
    skipped = _skipped(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            value = node.value
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            if id(node) not in skipped and _names_a_header(text, names):
                yield node.lineno, text


def sources() -> Iterator[tuple[str, str]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path.read_text()


def test_the_reader_finds_a_spelt_name() -> None:
    """A name as a whole literal counts, in str or bytes and in any case; in a docstring, in a
    sentence or as a slot, it does not (else the test below would pass on nothing)."""
    source = '''"""Sets the Host header."""
__slots__ = ("host",)
a = b"x-request-id"
b = "Content-Type"
c = "the Host header"
'''
    found = list(spelt_names(source, {"host", "x-request-id", "content-type"}))
    assert found == [(3, "x-request-id"), (4, "Content-Type")]


def test_the_reader_finds_a_header_line() -> None:
    """A literal that starts a header line of a known name, or has one after a CRLF, counts
    (a name spelt inside the line it is written in); a name in a sentence, a line of an
    unknown name, or the separator alone do not."""
    source = """a = b"Content-Length: %d\\r\\n"
b = b"\\r\\nx-request-id: "
c = "HTTP/1.1 400 Bad Request\\r\\nHost: x\\r\\n"
d = f"Content-Type: {kind}"
e = "sent as Content-Type: application/json"
f = b"X-Unknown: 1\\r\\n"
g = b": %d\\r\\n"
h = b"Content-Length"
"""
    found = sorted(spelt_names(source, {"host", "x-request-id", "content-type", "content-length"}))
    assert found == [
        (1, "Content-Length: %d\r\n"),
        (2, "\r\nx-request-id: "),
        (3, "HTTP/1.1 400 Bad Request\r\nHost: x\r\n"),
        (4, "Content-Type: "),
        (8, "Content-Length"),
    ]


def test_no_header_name_is_spelt_outside_the_names_module() -> None:
    names = header_names()
    spelt = []
    for path, source in sources():
        if path == NAMES_MODULE or path in SPELT_APART:
            continue
        spelt += [
            f"{path}:{line}: {text!r}"
            for line, text in spelt_names(source, names)
            if (path, text) not in NOT_A_HEADER_NAME
        ]
    assert spelt == [], "use the constants of auth_core/headers.py"


def test_the_allowances_are_still_needed() -> None:
    """An entry whose literal is gone goes too, so the lists do not outlive their reasons."""
    names = header_names()
    found = {(path, text) for path, source in sources() for _, text in spelt_names(source, names)}
    stale = [entry for entry in NOT_A_HEADER_NAME if entry not in found]
    assert stale == []
    spelling = {path for path, _ in found}
    assert spelling >= SPELT_APART


def test_each_constant_is_named_after_its_header_and_its_forms_agree() -> None:
    """`NAME` in the usual case, `B_NAME` its lower-case bytes, `W_NAME` its bytes; and the
    constant's name is the header's, upper-case with `_` for `-` (a typo shows)."""
    for name, value in vars(headers).items():
        if not (name.isupper() and isinstance(value, str | bytes)):
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if isinstance(value, bytes):
            assert name[:2] in ("B_", "W_"), name
            assert name[2:] == text.upper().replace("-", "_"), name
            if name.startswith("B_"):
                assert value == value.lower(), name
        else:
            assert name == text.upper().replace("-", "_"), name
    forms = vars(headers)
    assert forms["B_X_REQUEST_ID"] == b"x-request-id"
    assert forms["W_X_REQUEST_ID"] == b"X-Request-Id"
    assert forms["X_REQUEST_ID"] == "X-Request-Id"
    for name, value in forms.items():
        if name.startswith("W_") and "B_" + name[2:] in forms:
            assert forms["B_" + name[2:]] == value.lower(), name
        if name.startswith("W_") and name[2:] in forms:
            assert forms[name[2:]].encode() == value, name


def test_every_constant_is_used() -> None:
    """A name nothing reads is not kept (aiohttp's `hdrs` lists every header; this lists the
    ones the code handles)."""
    read: set[str] = set()
    for path, source in sources():
        if path == NAMES_MODULE:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute):
                read.add(node.attr)
            elif isinstance(node, ast.Name):
                read.add(node.id)
            elif isinstance(node, ast.alias):
                read.add(node.name)
    defined = [name for name in vars(headers) if name.isupper()]
    assert [name for name in defined if name not in read] == []


def test_the_signed_names_are_the_header_names() -> None:
    """gateway/context.py's lower-case names are the context headers the gateway writes."""
    signed = {*context.SIGNED, context.GATEWAY_SIGNATURE, context.GATEWAY_TIMESTAMP}
    assert len(signed) == 11
    assert signed <= header_names()
    assert "x-user-email-verified" in signed
