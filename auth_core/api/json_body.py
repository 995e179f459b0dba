"""The one parser of the API's JSON bodies, hardened against input that would otherwise end in
a 500: nesting deep enough to exhaust the parser's recursion (refused before it recurses),
strings holding NUL (which PostgreSQL's text refuses) or lone surrogates (which no UTF-8
encoder takes), and the non-numbers NaN and Infinity. Each is 400 `invalid_request`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from auth_core.errors import InvalidRequest

MAX_DEPTH = 32  # our bodies nest three levels at most; the parser itself gives up near 1000
# A JSON string, as the parser reads it (an escape takes the next byte, whatever it is), or
# one never closed, to the end (the parser stops there). Always a match, never a backtrack:
# were an unclosed string no match, every quote in it would be scanned again to the end
# (quadratic: seconds of the event loop for one 64 kB body).
_STRING = re.compile(rb'"[^"\\]*(?:\\(?:.|\Z)[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_OPENING = frozenset(b"[{")
# In a decoded string: NUL, or a surrogate the decoder could not pair.
_BAD_IN_STRING = re.compile(r"[\x00\ud800-\udfff]")


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in `body` nest more than `limit` levels, outside strings.

    A linear scan, no recursion: the strings go first (brackets in them do not count), then
    everything but brackets. Where the body is malformed the parser stops at the first error,
    and up to there this scan reads the bytes as it does."""
    skeleton = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if len(skeleton) <= limit:
        return False  # the usual case: a handful of brackets
    depth = 0
    for byte in skeleton:
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number out of range")
    return value


def _strings_are_text(document: Any) -> bool:
    """No key or string value anywhere holds NUL or a lone surrogate (depth is bounded)."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _BAD_IN_STRING.search(item) is not None:
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def parse_object(body: bytes) -> dict[str, Any]:
    """`body` as a JSON object; InvalidRequest for anything else."""
    if too_deep(body):
        raise InvalidRequest(f"the JSON body nests more than {MAX_DEPTH} levels")
    try:
        document = json.loads(body or b"{}", parse_constant=_not_a_number, parse_float=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidRequest("the body must be a JSON object")
    if not _strings_are_text(document):
        raise InvalidRequest("a string of the JSON body holds NUL or an unpaired surrogate")
    return document
