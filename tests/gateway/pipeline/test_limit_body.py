"""LimitBody on its own: a declared Content-Length over the route's max_body is refused before
anything goes upstream (docs/routes.md, `max_body`)."""

from __future__ import annotations

import pytest

from gateway.pipeline.limit_body import LimitBody
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import refusal, routed_exchange


@pytest.mark.parametrize("body", [b"", b"x", b"0123456789"], ids=["none", "1 byte", "10 bytes"])
def test_up_to_max_body_passes(body: bytes) -> None:
    exchange = routed_exchange(request("POST", "/v1/items", body=body), ROUTES)
    assert LimitBody()(exchange) is None


def test_over_max_body_is_413() -> None:
    exchange = routed_exchange(request("POST", "/v1/items", body=b"01234567890"), ROUTES)
    refused = refusal(lambda: LimitBody()(exchange))
    assert (refused.status, refused.code) == (413, "payload_too_large")


def test_a_chunked_body_is_left_to_the_forwarder() -> None:
    raw = (
        request("POST", "/v1/items", "Transfer-Encoding: chunked")
        + b"b\r\n01234567890\r\n0\r\n\r\n"
    )
    exchange = routed_exchange(raw, ROUTES)
    assert exchange.request.chunked
    assert LimitBody()(exchange) is None
