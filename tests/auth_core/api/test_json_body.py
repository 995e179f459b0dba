"""The API's JSON parser: nesting refused before the parser recurses (brackets inside strings
not counted, escapes read as the parser reads them), strings that are not text refused, and
everything an honest client sends accepted."""

from __future__ import annotations

from typing import Any

import pytest

from auth_core.api.json_body import parse_object, too_deep
from auth_core.errors import InvalidRequest


def deep(levels: int) -> bytes:
    return b'{"a":' + b"[" * (levels - 1) + b"1" + b"]" * (levels - 1) + b"}"


def test_a_hundred_thousand_open_brackets_are_refused_as_too_deep_not_parsed() -> None:
    # The parser would recurse (RecursionError near 1000 levels): the scan must come first
    # and say why.
    with pytest.raises(InvalidRequest, match="nests more than 32 levels"):
        parse_object(b"[" * 100_000)
    with pytest.raises(InvalidRequest, match="nests more than 32 levels"):
        parse_object(b'{"a":' * 100_000)


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        pytest.param(deep(32), False, id="32-levels"),
        pytest.param(deep(33), True, id="33-levels"),
        pytest.param(b'{"a":"' + b"[" * 500 + b'"}', False, id="brackets-in-a-string"),
        pytest.param(b'{"a":"\\"' + b"{" * 500 + b'"}', False, id="after-an-escaped-quote"),
        # The string ends at the quote after an escaped backslash: the brackets are real.
        pytest.param(
            b'{"a":"\\\\",' + b'"b":' + b"[" * 40 + b"]" * 40 + b"}", True, id="after-2-bs"
        ),
        pytest.param(b"[]" * 10_000, False, id="wide-not-deep"),
        pytest.param(b'{"a":"' + b"]" * 100 + b'",' + deep(33)[1:], True, id="closers-in-a-string"),
    ],
)
def test_depth_is_counted_outside_strings(body: bytes, refused: bool) -> None:
    assert too_deep(body) is refused


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(b'{"a":"\\ud800"}', "unpaired surrogate", id="high-half"),
        pytest.param(b'{"a":"\\udfff"}', "unpaired surrogate", id="low-half"),
        pytest.param(b'{"a":["x",{"b":"\\u0000"}]}', "NUL", id="nul-nested"),
        pytest.param(b'{"\\ud800":1}', "unpaired surrogate", id="in-a-key"),
        pytest.param(b'{"a":NaN}', "not valid JSON", id="nan"),
        pytest.param(b'{"a":-Infinity}', "not valid JSON", id="minus-infinity"),
        pytest.param(b'{"a":1e400}', "not valid JSON", id="overflowing-float"),
        pytest.param(b'{"a":' + b"9" * 5000 + b"}", "not valid JSON", id="5000-digit-integer"),
        pytest.param(b'{"a":"\x00"}', "not valid JSON", id="raw-nul"),
        # json.loads decodes bytes with surrogatepass: the half arrives as a character.
        pytest.param(b'{"a":"\xed\xa0\x80"}', "unpaired surrogate", id="surrogate-as-utf8"),
        pytest.param(b"[1]", "a JSON object", id="not-an-object"),
    ],
)
def test_strings_that_are_not_text_and_non_numbers_are_refused(body: bytes, detail: str) -> None:
    with pytest.raises(InvalidRequest, match=detail):
        parse_object(body)


@pytest.mark.parametrize(
    ("body", "document"),
    [
        pytest.param(b"", {}, id="empty"),
        pytest.param(b'{"name":"\\ud83d\\ude00 Ada"}', {"name": "\U0001f600 Ada"}, id="pair"),
        pytest.param(b'{"p":"tab\\there"}', {"p": "tab\there"}, id="control-escape-kept"),
        pytest.param(b'{"n":1.5e3,"i":-7}', {"n": 1500.0, "i": -7}, id="numbers"),
        pytest.param('{"name":"Zoë"}'.encode(), {"name": "Zoë"}, id="utf8"),
    ],
)
def test_honest_bodies_parse(body: bytes, document: dict[str, Any]) -> None:
    assert parse_object(body) == document
