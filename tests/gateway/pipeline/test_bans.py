"""RefuseBanned on its own: a banned client address gets 429 with the time left of its ban
(docs/authentication.md, bans)."""

from __future__ import annotations

import time

from auth_core.revocation import BAN, UNBAN, RevocationSet
from auth_core.store.revocations import Revocation
from gateway.pipeline.bans import RefuseBanned
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import refusal, routed_exchange

BANNED = "198.51.100.66"


def banned_for(seconds: float) -> RevocationSet:
    revoked = RevocationSet()
    now = time.time()
    revoked.apply(Revocation(1, BAN, BANNED, now, now + seconds))
    return revoked


def test_no_bans_nothing_to_do() -> None:
    exchange = routed_exchange(request("GET", "/v1/items"), ROUTES, peer=BANNED)
    assert RefuseBanned(RevocationSet())(exchange) is None


def test_a_banned_address_is_429_with_retry_after() -> None:
    exchange = routed_exchange(request("GET", "/v1/items"), ROUTES, peer=BANNED)
    refused = refusal(lambda: RefuseBanned(banned_for(90))(exchange))
    assert (refused.status, refused.code) == (429, "rate_limited")
    assert 89 <= int(refused.headers["Retry-After"]) <= 90


def test_the_last_part_of_a_second_is_still_one_second() -> None:
    exchange = routed_exchange(request("GET", "/v1/items"), ROUTES, peer=BANNED)
    refused = refusal(lambda: RefuseBanned(banned_for(0.5))(exchange))
    assert refused.headers["Retry-After"] == "1"


def test_another_address_passes() -> None:
    exchange = routed_exchange(request("GET", "/v1/items"), ROUTES, peer="198.51.100.67")
    assert RefuseBanned(banned_for(90))(exchange) is None


def test_an_ended_or_lifted_ban_passes() -> None:
    exchange = routed_exchange(request("GET", "/v1/items"), ROUTES, peer=BANNED)
    assert RefuseBanned(banned_for(-1))(exchange) is None
    revoked = banned_for(90)
    revoked.apply(Revocation(2, UNBAN, BANNED, time.time() + 1, time.time() + 90))
    assert RefuseBanned(revoked)(exchange) is None
