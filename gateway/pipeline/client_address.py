"""Who is calling: one resolver for the client address, used by every part that needs it
(IP whitelists, rate limits, bans, the audit and access logs).

The address is the TCP peer's, unless the peer is a trusted proxy (GATEWAY_TRUSTED_PROXIES):
then `X-Forwarded-For` is read right to left, skipping trusted entries; the first untrusted
entry is the client. Entries left of it were written by the client and prove nothing. Trusted
proxies are parsed once into a netaddr.IPSet; answers per address are cached.
"""

from __future__ import annotations

from typing import Final

import netaddr

from auth_core import headers as h
from auth_core.iplists import normalise_ip
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult

_CACHE_LIMIT: Final = 4096


class ClientAddressResolver:
    """Finds the client address behind any chain of trusted proxies."""

    def __init__(self, trusted: netaddr.IPSet) -> None:
        self.trusted = trusted
        # An IPSet's truth is a Python call (netaddr is not compiled): asked once, not per request.
        self.any_trusted = bool(trusted)
        self._trusted_cache: dict[str, bool] = {}

    def is_trusted(self, ip: str) -> bool:
        cached = self._trusted_cache.get(ip)
        if cached is None:
            if len(self._trusted_cache) >= _CACHE_LIMIT:
                self._trusted_cache.clear()
            cached = self._trusted_cache[ip] = self.any_trusted and ip in self.trusted
        return cached

    def resolve(self, peer: str, forwarded_for: list[str]) -> str:
        """The client address given the peer and every X-Forwarded-For value, in order."""
        if not forwarded_for or not self.is_trusted(peer):
            return peer
        entries = [item for value in forwarded_for for item in value.split(",")]
        client = peer
        for raw in reversed(entries):
            address = normalise_ip(raw)
            if address is None:
                break  # junk: believe no further than the last trusted hop
            client = address
            if not self.is_trusted(address):
                break
        return client


class ResolveClientAddress(Stage):
    """Sets `exchange.client_ip`."""

    def __init__(self, resolver: ClientAddressResolver) -> None:
        self.resolver = resolver

    def __call__(self, exchange: Exchange) -> StageResult:
        request = exchange.request
        resolver = self.resolver
        peer = exchange.peer = request.peer
        if resolver.any_trusted and resolver.is_trusted(peer):
            exchange.peer_trusted = True
            values = [v.decode("latin-1") for v in request.header_values(h.B_X_FORWARDED_FOR)]
            exchange.client_ip = resolver.resolve(peer, values)
        else:
            exchange.client_ip = peer
        return None
