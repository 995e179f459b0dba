"""The one resolver of the client address (docs/forwarding.md)."""

from __future__ import annotations

import netaddr
import pytest

from gateway.pipeline.client_address import (
    ClientAddressResolver,
    ResolveClientAddress,
    normalise_ip,
)
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import cases, make_exchange

TRUSTED = netaddr.IPSet(["10.0.0.0/8", "2001:db8::/32"])

CASES = [
    # (description, peer, X-Forwarded-For values, expected client)
    ("untrusted peer, no header", "203.0.113.9", [], "203.0.113.9"),
    ("untrusted peer, forged header ignored", "203.0.113.9", ["1.2.3.4"], "203.0.113.9"),
    ("trusted peer, one hop", "10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
    (
        "trusted chain read right to left past trusted entries",
        "10.0.0.2",
        ["198.51.100.7, 10.1.1.1, 10.2.2.2"],
        "198.51.100.7",
    ),
    (
        "client-written entries left of the first untrusted one prove nothing",
        "10.0.0.2",
        ["6.6.6.6, 198.51.100.7"],
        "198.51.100.7",
    ),
    (
        "several headers are one list, in order",
        "10.0.0.2",
        ["6.6.6.6", "198.51.100.7, 10.3.3.3"],
        "198.51.100.7",
    ),
    ("junk stops the walk at the last trusted hop", "10.0.0.2", ["not-an-ip"], "10.0.0.2"),
    (
        "junk between trusted hops",
        "10.0.0.2",
        ["198.51.100.7, garbage, 10.9.9.9"],
        "10.9.9.9",
    ),
    ("all trusted: the leftmost", "10.0.0.2", ["10.4.4.4, 10.5.5.5"], "10.4.4.4"),
    ("IPv4 with a port", "10.0.0.2", ["198.51.100.7:4711"], "198.51.100.7"),
    ("bracketed IPv6 with a port", "10.0.0.2", ["[2001:db9::1]:443"], "2001:db9::1"),
    ("IPv4-mapped IPv6 is its IPv4 address", "10.0.0.2", ["::ffff:198.51.100.7"], "198.51.100.7"),
    ("trusted IPv6 peer", "2001:db8::5", ["198.51.100.7"], "198.51.100.7"),
    ("empty entries are junk", "10.0.0.2", [", ,"], "10.0.0.2"),
]


@pytest.mark.parametrize(("peer", "forwarded", "expected"), cases(CASES))
def test_client_address(peer: str, forwarded: list[str], expected: str) -> None:
    assert ClientAddressResolver(TRUSTED).resolve(peer, forwarded) == expected


def test_no_trusted_proxies_means_the_peer_always() -> None:
    resolver = ClientAddressResolver(netaddr.IPSet())
    assert resolver.resolve("10.0.0.2", ["198.51.100.7"]) == "10.0.0.2"
    assert not resolver.is_trusted("10.0.0.2")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 192.0.2.1 ", "192.0.2.1"),
        ("::FFFF:192.0.2.1", "192.0.2.1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("[::1]", "::1"),
        ("[::1", None),
        ("unknown", None),
        ("", None),
        ("999.1.1.1", None),
    ],
)
def test_normalise_ip(raw: str, expected: str | None) -> None:
    assert normalise_ip(raw) == expected


STAGE_CASES = [
    # (description, peer, X-Forwarded-For lines, client, peer trusted)
    ("an untrusted peer's header is ignored", "203.0.113.9", ["1.2.3.4"], "203.0.113.9", False),
    ("a trusted peer's header is read", "10.0.0.2", ["198.51.100.7"], "198.51.100.7", True),
    (
        "every header line, in order",
        "10.0.0.2",
        ["6.6.6.6", "198.51.100.7, 10.3.3.3"],
        "198.51.100.7",
        True,
    ),
    ("a trusted peer without the header", "10.0.0.2", [], "10.0.0.2", True),
]


@pytest.mark.parametrize(("peer", "forwarded", "client", "trusted"), cases(STAGE_CASES))
def test_the_stage_reads_the_request(
    peer: str, forwarded: list[str], client: str, trusted: bool
) -> None:
    raw = request("GET", "/v1/items", *(f"X-Forwarded-For: {line}" for line in forwarded))
    exchange = make_exchange(raw, ROUTES, peer=peer)
    assert ResolveClientAddress(ClientAddressResolver(TRUSTED))(exchange) is None
    assert (exchange.peer, exchange.client_ip, exchange.peer_trusted) == (peer, client, trusted)
