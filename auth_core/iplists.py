"""IP whitelists: CIDR lists in IPv4 and IPv6, parsed once into netaddr IPSets.

netaddr treats `::ffff:10.1.2.3` (an IPv4 client on a dual-stack socket) and `10.1.2.3` as
different addresses; a whitelist here matches both forms against both kinds of rule.
"""

from __future__ import annotations

from collections.abc import Iterable

import netaddr

MAX_ENTRIES = 1000


def normalise_ip(value: str) -> str | None:
    """`value` as a canonical IP string (IPv4-mapped IPv6 as IPv4), or None if it is not one."""
    text = value.strip()
    if text.startswith("["):  # [v6] or [v6]:port
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = netaddr.IPAddress(text)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None
    if address.version == 6 and address.is_ipv4_mapped():
        address = address.ipv4()
    return str(address)


class IpListError(ValueError):
    """An entry is not an address or a CIDR block."""


def parse_cidrs(entries: Iterable[object]) -> list[str]:
    """The entries in canonical CIDR form (`10.0.0.0/8`, `2001:db8::/32`); IpListError names
    the first bad one. Host bits set (`10.0.0.1/8`) are refused: they are usually a typo."""
    canonical: list[str] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise IpListError(f"{entry!r} is not an IP address or CIDR block")
        text = entry.strip()
        try:
            network = netaddr.IPNetwork(text)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            raise IpListError(f"{text!r} is not an IP address or CIDR block") from None
        if "/" in text and network.network != network.ip:
            raise IpListError(f"{text!r} has host bits set; did you mean {network.cidr}?")
        canonical.append(str(network.cidr))
        if len(canonical) > MAX_ENTRIES:
            raise IpListError(f"at most {MAX_ENTRIES} entries")
    return canonical


class IpWhitelist:
    """A set of CIDR blocks; `allows(ip)` for a client address in either notation."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.cidrs = tuple(cidrs)
        self._set = netaddr.IPSet(self.cidrs)
        self._answers: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.cidrs)

    def allows(self, ip: str) -> bool:
        answer = self._answers.get(ip)
        if answer is None:
            answer = self._check(ip)
            if len(self._answers) >= 4096:
                self._answers.clear()
            self._answers[ip] = answer
        return answer

    def _check(self, ip: str) -> bool:
        try:
            address = netaddr.IPAddress(ip)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            return False
        if address in self._set:
            return True
        if address.version == 6 and address.is_ipv4_mapped():
            return address.ipv4() in self._set
        if address.version == 4:
            return address.ipv6(ipv4_compatible=False) in self._set
        return False
