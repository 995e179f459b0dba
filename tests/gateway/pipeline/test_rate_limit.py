"""RateLimit on its own, counted in this worker (no Redis): RateLimit-* on what passes, 429
with Retry-After past the limit, counted by the rule's key (docs/routes.md, rate
limits)."""

from __future__ import annotations

from auth_core.limits import Limiter
from auth_core.models import Principal
from gateway.pipeline.rate_limit import RateLimit, subject
from metrics.catalog import Catalog
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import refusal, route_table, routed_exchange

TABLE = route_table(ROUTES)


def test_two_a_minute_then_429() -> None:
    stage = RateLimit(Limiter(None), Catalog())
    answers = []
    for _ in range(2):
        exchange = routed_exchange(request("GET", "/limited"), TABLE)
        assert stage(exchange) is None
        answers.append({k.decode(): v.decode() for k, v in exchange.response_headers})
    assert [a["RateLimit-Remaining"] for a in answers] == ["1", "0"]
    assert answers[0]["RateLimit-Limit"] == "2"
    assert answers[0]["RateLimit-Policy"] == "2;w=60"
    refused = refusal(lambda: stage(routed_exchange(request("GET", "/limited"), TABLE)))
    assert (refused.status, refused.code) == (429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert refused.headers["RateLimit-Remaining"] == "0"


def test_each_client_address_has_its_own_count() -> None:
    stage = RateLimit(Limiter(None), Catalog())
    for peer in ("198.51.100.1", "198.51.100.1", "198.51.100.2", "198.51.100.2"):
        assert stage(routed_exchange(request("GET", "/limited"), TABLE, peer=peer)) is None


def test_a_route_without_rate_limit_is_left_out() -> None:
    stage = RateLimit(Limiter(None), Catalog())
    exchange = routed_exchange(request("GET", "/v1/items"), TABLE)
    assert exchange.route is not None
    assert not stage.applies(exchange.route)


def test_the_subject_by_key() -> None:
    exchange = routed_exchange(request("GET", "/limited"), TABLE, peer="198.51.100.9")
    route = exchange.route
    assert route is not None
    (rule,) = route.rate_limits
    assert subject(rule, exchange) == "ip:198.51.100.9"
    exchange.principal = Principal("jwt", user_id="u1", tenant_id="t1", session_id="s1")
    assert subject(rule, exchange) == "ip:198.51.100.9"  # an ip rule counts the address
