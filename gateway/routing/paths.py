"""One canonical form of a request path: what routes match and what upstreams receive.

Decisions (docs/routes.md; every one closes a known way round a route's auth):

- `%XX` of an unreserved character (letters, digits, `-._~`) is decoded (RFC 3986 section
  6.2.2.2), so `%2e` is a dot and `%61dmin` is `admin`; other escapes are kept, hex upper-cased.
- Dot segments are resolved as RFC 3986 section 5.2.4 says, clamped at the root, after that
  decoding: `/a/%2e%2e/b` is `/b`.
- Repeated slashes fold into one: `//admin` is `/admin`.
- Rejected outright (400): `%2F` and `%5C` (an encoded separator means one thing to us and
  another to some upstream), raw `\\`, `%00` and every other encoded or raw control character,
  malformed escapes, fragments, and raw `;`: path parameters, which Tomcat and Jetty strip
  before routing (`/admin;x` is `/admin` to them, and `..;/` is `..`), so a path carrying one
  could reach a route other than the one its form here names. An encoded `%3B` is an ordinary
  character to them and stays allowed.
- The query string is never touched: it is forwarded byte for byte.

Paths are case-sensitive, as in nginx and Envoy.
"""

from __future__ import annotations

_HEX = frozenset("0123456789abcdefABCDEF")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_FORBIDDEN_BYTES = frozenset({0x2F, 0x5C, 0x7F, *range(0x20)})


class PathError(ValueError):
    """A request target that has no safe canonical form; the message is safe to show."""


def split_target(target: str) -> tuple[str, str]:
    """Split an origin-form request target into (path, query); query keeps its `?`."""
    if not target.startswith("/"):
        # absolute-form is for forward proxies (RFC 9112 section 3.2.2); `*` is server-wide.
        raise PathError("the request target must be a path starting with '/'")
    if "#" in target:
        raise PathError("a request target must not carry a fragment")
    cut = target.find("?")
    if cut < 0:
        return target, ""
    return target[:cut], target[cut:]


def canonical_path(path: str) -> str:
    """The canonical form of `path` (which starts with '/'), or PathError."""
    if (
        "%" not in path
        and "//" not in path
        and "/." not in path
        and "\\" not in path
        and "#" not in path
        and ";" not in path
        and path.isascii()
        and path.isprintable()
        and " " not in path
    ):
        return path  # the common case: already canonical
    return _canonicalise(path)


def _canonicalise(path: str) -> str:
    if "#" in path:
        raise PathError("a request target must not carry a fragment")
    raw_segments = path.split("/")[1:]
    segments: list[str] = []
    trailing_slash = False
    for raw in raw_segments:
        segment = _decode_segment(raw)
        trailing_slash = segment in ("", ".", "..")
        if segment == "" or segment == ".":
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    if not segments:
        return "/"
    return "/" + "/".join(segments) + ("/" if trailing_slash else "")


def _decode_segment(raw: str) -> str:
    out: list[str] = []
    i = 0
    length = len(raw)
    while i < length:
        char = raw[i]
        if char == "%":
            digits = raw[i + 1 : i + 3]
            if len(digits) != 2 or not _HEX.issuperset(digits):
                raise PathError("malformed percent-encoding in the path")
            byte = int(digits, 16)
            if byte in _FORBIDDEN_BYTES:
                raise PathError(f"%{digits.upper()} is not allowed in a path")
            decoded = chr(byte)
            out.append(decoded if decoded in _UNRESERVED else "%" + digits.upper())
            i += 3
            continue
        if char == ";":
            raise PathError("path parameters (;) are not allowed")
        if char == "\\" or not char.isascii() or not char.isprintable() or char == " ":
            raise PathError("the path contains a character that is not allowed")
        out.append(char)
        i += 1
    return "".join(out)
