"""The access_token query parameter leaves the query, and nothing else changes (docs/forwarding.md:
credentials stay at the gateway). Each case is also what the websocket handshake
reads a token from (parse_qsl), so that what is read is what is withheld."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from gateway.pipeline.withhold import without_access_token
from tests.support import cases

CASES = [
    # (description, query as sent, query forwarded)
    ("no query", "", ""),
    ("a bare question mark", "?", "?"),
    ("no token", "?a=1&b=%zz&c=", "?a=1&b=%zz&c="),
    ("only the token", "?access_token=T", ""),
    ("the token first", "?access_token=T&a=1", "?a=1"),
    ("the token last", "?a=1&access_token=T", "?a=1"),
    ("twice", "?access_token=T&a=1&access_token=U", "?a=1"),
    ("without a value", "?access_token&a=1", "?a=1"),
    ("empty parts around it stay", "?&access_token=T&", "?&"),
    ("an escaped name", "?access%5Ftoken=T&a=%41", "?a=%41"),
    ("an escaped name in lower case", "?access%5ftoken=T", ""),
    (
        "escapes elsewhere stay as they are",
        "?a=%e2%9c%93&access_token=T&b=a+b",
        "?a=%e2%9c%93&b=a+b",
    ),
    ("a value that says access_token", "?a=access_token", "?a=access_token"),
    ("a longer name", "?access_tokens=1&my_access_token=2", "?access_tokens=1&my_access_token=2"),
    ("another case", "?Access_Token=1", "?Access_Token=1"),
    ("a plus is a space, not an underscore", "?access+token=1", "?access+token=1"),
    ("a semicolon does not separate", "?a=1;access_token=T", "?a=1;access_token=T"),
]


@pytest.mark.parametrize(("query", "forwarded"), cases(CASES))
def test_only_the_access_token_leaves_the_query(query: str, forwarded: str) -> None:
    assert without_access_token(query) == forwarded
    read = [name for name, _ in parse_qsl(query[1:], keep_blank_values=True)]
    left = [name for name, _ in parse_qsl(forwarded[1:], keep_blank_values=True)]
    assert "access_token" not in left
    assert [name for name in read if name != "access_token"] == left
