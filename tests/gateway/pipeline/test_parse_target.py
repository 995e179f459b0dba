"""ParseTarget on its own: the canonical path routes match, the query exactly as sent
(docs/routes.md)."""

from __future__ import annotations

import pytest

from gateway.pipeline.parse_target import ParseTarget
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import cases, make_exchange, refusal

CANONICAL = [
    # (description, target as sent, path, query)
    ("a plain path and its query", "/v1/items?a=1", "/v1/items", "?a=1"),
    ("dot segments resolved", "/v1/./items/../items", "/v1/items", ""),
    ("empty segments merged", "/v1//items", "/v1/items", ""),
    ("unreserved escapes decoded", "/v1/%69tems", "/v1/items", ""),
    ("escaped dot segments resolved too", "/v1/items/%2e%2e/x", "/v1/x", ""),
    ("no climbing above the root", "/../x", "/x", ""),
    ("the query kept byte for byte", "/v1/items?a=%zz&b=a+b", "/v1/items", "?a=%zz&b=a+b"),
]


@pytest.mark.parametrize(("target", "path", "query"), cases(CANONICAL))
def test_the_path_is_canonical_and_the_query_untouched(target: str, path: str, query: str) -> None:
    exchange = make_exchange(request("GET", target), ROUTES)
    assert ParseTarget()(exchange) is None
    assert (exchange.path, exchange.query) == (path, query)


REFUSED = [
    ("an escaped slash", "/a/%2F/b"),
    ("an escaped NUL", "/x%00y"),
    ("the asterisk form", "*"),
    ("the absolute form", "http://h/x?q"),
]


@pytest.mark.parametrize("target", cases(REFUSED))
def test_a_path_with_no_safe_form_is_400(target: str) -> None:
    exchange = make_exchange(request("GET", target), ROUTES)
    refused = refusal(lambda: ParseTarget()(exchange))
    assert (refused.status, refused.code) == (400, "invalid_request")
