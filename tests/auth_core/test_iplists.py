"""IP whitelists (docs/authentication.md): real CIDRs in IPv4 and IPv6, and an IPv4-mapped IPv6
client address (`::ffff:10.1.2.3`, what a dual-stack socket reports) matches its IPv4 rule."""

from __future__ import annotations

import pytest

from auth_core.iplists import MAX_ENTRIES, IpListError, IpWhitelist, parse_cidrs

# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "canonical"),
    [
        pytest.param(["203.0.113.7"], ["203.0.113.7/32"], id="ipv4-address"),
        pytest.param(["10.0.0.0/8"], ["10.0.0.0/8"], id="ipv4-cidr"),
        pytest.param(["0.0.0.0/0"], ["0.0.0.0/0"], id="ipv4-everything"),
        pytest.param([" 192.0.2.0/24 "], ["192.0.2.0/24"], id="spaces-around"),
        pytest.param(["2001:db8::1"], ["2001:db8::1/128"], id="ipv6-address"),
        pytest.param(["2001:DB8::/32"], ["2001:db8::/32"], id="ipv6-cidr-upper-case"),
        pytest.param(["2001:0db8:0000::/48"], ["2001:db8::/48"], id="ipv6-long-form"),
        pytest.param(["::ffff:10.0.0.0/104"], ["::ffff:10.0.0.0/104"], id="ipv4-mapped-cidr"),
        pytest.param(
            ["10.0.0.0/8", "2001:db8::/32", "198.51.100.9"],
            ["10.0.0.0/8", "2001:db8::/32", "198.51.100.9/32"],
            id="mixed-in-order",
        ),
        pytest.param([], [], id="empty"),
    ],
)
def test_parse_cidrs_gives_canonical_blocks(entries: list[object], canonical: list[str]) -> None:
    assert parse_cidrs(entries) == canonical


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        pytest.param("junk", "'junk'", id="word"),
        pytest.param("", "''", id="empty"),
        pytest.param("   ", "'   '", id="blank"),
        pytest.param("10", "'10'", id="one-number"),
        pytest.param("1.2.3", "'1.2.3'", id="three-octets"),
        pytest.param("010.0.0.1", "'010.0.0.1'", id="leading-zero-octet"),
        pytest.param("256.0.0.1", "'256.0.0.1'", id="octet-too-big"),
        pytest.param("10.0.0.0/33", "'10.0.0.0/33'", id="ipv4-prefix-too-long"),
        pytest.param("2001:db8::/129", "'2001:db8::/129'", id="ipv6-prefix-too-long"),
        pytest.param("10.0.0.0/x", "'10.0.0.0/x'", id="prefix-not-a-number"),
        pytest.param("10.0.0.0-10.0.0.9", "'10.0.0.0-10.0.0.9'", id="range"),
        pytest.param("fe80::1%eth0", "'fe80::1%eth0'", id="zone-id"),
        pytest.param("2001:db8:::1", "'2001:db8:::1'", id="ipv6-triple-colon"),
        pytest.param(None, "None", id="none"),
        pytest.param(10, "10", id="integer"),
        pytest.param(["10.0.0.0/8"], "['10.0.0.0/8']", id="nested-list"),
    ],
)
def test_parse_cidrs_refuses_junk_and_names_it(entry: object, named: str) -> None:
    with pytest.raises(IpListError) as caught:
        parse_cidrs(["192.0.2.0/24", entry, "198.51.100.0/24"])
    assert named in str(caught.value)
    # The good entries around it are not what the error is about.
    assert "192.0.2.0" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("entry", "suggestion"),
    [
        pytest.param("10.0.0.1/8", "10.0.0.0/8", id="ipv4"),
        pytest.param("192.0.2.77/24", "192.0.2.0/24", id="ipv4-24"),
        pytest.param("2001:db8::1/32", "2001:db8::/32", id="ipv6"),
    ],
)
def test_parse_cidrs_refuses_host_bits_and_suggests_the_block(entry: str, suggestion: str) -> None:
    with pytest.raises(IpListError) as caught:
        parse_cidrs([entry])
    message = str(caught.value)
    assert repr(entry) in message
    assert suggestion in message


def test_parse_cidrs_caps_the_number_of_entries() -> None:
    many = [f"10.{i // 256}.{i % 256}.0/24" for i in range(MAX_ENTRIES)]
    assert len(parse_cidrs(many)) == MAX_ENTRIES
    with pytest.raises(IpListError, match=str(MAX_ENTRIES)):
        parse_cidrs([*many, "192.0.2.0/24"])


# -- matching ----------------------------------------------------------------------------------

RULES = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "2001:db8:ffff::1"]


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        pytest.param("10.0.0.0", True, id="v4-first-of-block"),
        pytest.param("10.255.255.255", True, id="v4-last-of-block"),
        pytest.param("11.0.0.0", False, id="v4-next-block"),
        pytest.param("9.255.255.255", False, id="v4-block-before"),
        pytest.param("192.0.2.7", True, id="v4-single-address"),
        pytest.param("192.0.2.8", False, id="v4-neighbour-of-single"),
        pytest.param("2001:db8::1", True, id="v6-in-block"),
        pytest.param("2001:DB8:0:0::abcd", True, id="v6-other-notation"),
        pytest.param("2001:db9::1", False, id="v6-next-block"),
        pytest.param("2001:db8:ffff::1", True, id="v6-single-address"),
        pytest.param("::ffff:10.1.2.3", True, id="mapped-client-v4-rule"),
        pytest.param("::FFFF:192.0.2.7", True, id="mapped-client-upper-case"),
        pytest.param("::ffff:c000:207", True, id="mapped-client-hex-notation"),
        pytest.param("::ffff:11.1.2.3", False, id="mapped-client-outside"),
        pytest.param("::ffff:192.0.2.8", False, id="mapped-neighbour-of-single"),
        # `::10.1.2.3` (deprecated IPv4-compatible) and 6to4 are other addresses altogether.
        pytest.param("::10.1.2.3", False, id="ipv4-compatible-is-not-mapped"),
        pytest.param("2002:a01:203::", False, id="6to4-is-not-mapped"),
        pytest.param("junk", False, id="junk"),
        pytest.param("", False, id="empty"),
        pytest.param("10", False, id="one-number"),
        pytest.param("167837955", False, id="integer-form"),
        pytest.param("010.1.2.3", False, id="leading-zero"),
        pytest.param("10.1.2.3/32", False, id="a-cidr-is-no-address"),
        pytest.param("10.1.2.3:443", False, id="with-port"),
    ],
)
def test_whitelist_matching(ip: str, allowed: bool) -> None:
    whitelist = IpWhitelist(parse_cidrs(RULES))
    assert whitelist.allows(ip) is allowed
    assert whitelist.allows(ip) is allowed  # and the same once remembered


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        pytest.param("10.1.2.3", True, id="v4-client"),
        pytest.param("::ffff:10.1.2.3", True, id="mapped-client"),
        pytest.param("11.1.2.3", False, id="v4-client-outside"),
        pytest.param("::ffff:11.1.2.3", False, id="mapped-client-outside"),
    ],
)
def test_a_v4_client_matches_an_ipv4_mapped_rule(ip: str, allowed: bool) -> None:
    whitelist = IpWhitelist(parse_cidrs(["::ffff:10.0.0.0/104"]))
    assert whitelist.allows(ip) is allowed


def test_an_empty_whitelist_allows_nobody() -> None:
    whitelist = IpWhitelist([])
    assert not whitelist
    assert whitelist.cidrs == ()
    for ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "10.0.0.1"):
        assert whitelist.allows(ip) is False
    assert IpWhitelist(["10.0.0.0/8"])


def test_a_v6_rule_does_not_let_v4_clients_through_by_accident() -> None:
    whitelist = IpWhitelist(parse_cidrs(["2001:db8::/32"]))
    for ip in ("10.0.0.1", "::ffff:10.0.0.1", "127.0.0.1", "0.0.0.0"):
        assert whitelist.allows(ip) is False
    assert whitelist.allows("2001:db8::42") is True


def test_a_v4_rule_does_not_let_other_v6_clients_through() -> None:
    whitelist = IpWhitelist(parse_cidrs(["0.0.0.0/0"]))
    assert whitelist.allows("203.0.113.1") is True
    assert whitelist.allows("::ffff:203.0.113.1") is True
    for ip in ("::1", "2001:db8::1", "fe80::1", "::"):
        assert whitelist.allows(ip) is False


def test_many_distinct_clients_keep_getting_right_answers() -> None:
    # The whitelist remembers answers; past its memory's size it must still be right.
    whitelist = IpWhitelist(parse_cidrs(["10.0.0.0/16"]))
    for i in range(10_000):
        inside = f"10.0.{i // 256 % 256}.{i % 256}"
        outside = f"10.1.{i // 256 % 256}.{i % 256}"
        assert whitelist.allows(inside) is True
        assert whitelist.allows(outside) is False
