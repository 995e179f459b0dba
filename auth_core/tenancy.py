"""Tenants (SaaS clients): their IP and origin whitelists, and the policy cache the gateway
reads on every request of a tenant's caller.

A policy is the tenant with its whitelists parsed once (an IpWhitelist, an OriginWhitelist).
It is cached per worker and dropped when any tenant, credential or user revocation arrives
(`RevocationSet.generation`): a whitelist change made by any worker is in force everywhere at
the next sync.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import netaddr

from auth_core.credential_cache import CredentialDeps
from auth_core.errors import AuthUnavailable, Conflict, InvalidRequest, NotFound
from auth_core.iplists import IpListError, IpWhitelist, parse_cidrs
from auth_core.models import Tenant
from auth_core.origins import OriginWhitelist, normalise_origin
from auth_core.revocation import TENANT
from auth_core.stats import TENANT_HIT, TENANT_MISS, TENANT_SHARED_HIT
from auth_core.store import DatabaseUnavailable, UniqueViolation
from auth_core.text import plain_text

if TYPE_CHECKING:
    from auth_core.calls import CallInfo

MAX_POLICIES = 10_000
MAX_ORIGINS = 100
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    tenant: Tenant
    origins: OriginWhitelist
    ips: IpWhitelist
    generation: int
    until: float


_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _dns_name(host: str, *, min_labels: int = 1) -> bool:
    labels = host.split(".")
    return (
        len(host) <= 253
        and len(labels) >= min_labels
        and all(_LABEL.fullmatch(label) for label in labels)
    )


def _valid_host(host: str) -> bool:
    """A DNS name, an IPv4 address or a bracketed IPv6 address."""
    if host.startswith("["):
        try:
            netaddr.IPAddress(host[1:-1], flags=netaddr.INET_PTON)
        except (netaddr.AddrFormatError, ValueError):
            return False
        return host.endswith("]")
    return _dns_name(host)


def valid_origins(value: object) -> list[str]:
    """A list of origins (`https://app.example.com`, `https://*.example.com`), normalised.
    Anything that could never equal a browser's Origin is refused rather than stored."""
    if not isinstance(value, list) or len(value) > MAX_ORIGINS:
        raise InvalidRequest(f"origins must be a list of at most {MAX_ORIGINS} origins")
    origins: list[str] = []
    for entry in value:
        if not isinstance(entry, str):
            raise InvalidRequest("origins must be strings")
        text = entry.strip().lower()
        scheme, _, rest = text.partition("://")
        if rest.startswith("*."):
            # One wildcard label over a domain of two labels or more: *.example.com, not
            # *.com (every site under a top-level domain) nor *.*.example.com.
            normal = normalise_origin(f"{scheme}://x{rest[1:]}")
            domain = (urlsplit(normal).hostname or "")[2:] if normal else ""
            if normal is None or not _dns_name(domain, min_labels=2) or "*" in rest[2:]:
                raise InvalidRequest(
                    f"{entry!r} is not a wildcard origin (scheme://*.domain.tld[:port])"
                )
            origins.append(scheme + "://*" + normal[len(scheme) + 4 :])
            continue
        normal = normalise_origin(entry)
        host = urlsplit(normal).netloc.rpartition("@")[2] if normal else ""
        # The host without the port: [v6] keeps its brackets.
        host = host[: host.find("]") + 1] if host.startswith("[") else host.partition(":")[0]
        if normal is None or entry.strip().endswith("/") or not _valid_host(host):
            raise InvalidRequest(
                f"{entry!r} is not an origin (scheme://host[:port], no path, or *.domain)"
            )
        origins.append(normal)
    return list(dict.fromkeys(origins))


def valid_ip_list(value: object) -> list[str]:
    if not isinstance(value, list):
        raise InvalidRequest("an IP whitelist is a list of addresses or CIDR blocks")
    try:
        return list(dict.fromkeys(parse_cidrs(value)))
    except IpListError as exc:
        raise InvalidRequest(str(exc)) from None


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a tenant named {name!r} exists already (names are unique, in any case)")


def valid_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise InvalidRequest(f"name must be a non-empty string of at most {MAX_NAME} characters")
    return plain_text(value.strip(), "name")


@dataclass(frozen=True, slots=True)
class OriginIndex:
    """Every tenant's origins together: what a CORS preflight, which carries no credential
    and so names no tenant, is answered from."""

    origins: OriginWhitelist
    generation: int
    until: float


class Tenants:
    def __init__(self, *, deps: CredentialDeps) -> None:
        self._store = deps.store
        self._settings = deps.settings
        self._audit = deps.audit
        self._revoker = deps.revoker
        self._revoked = deps.revoked
        self._stats = deps.stats
        self._shared = deps.shared
        self._policies: dict[str, TenantPolicy] = {}
        self._index: OriginIndex | None = None

    async def create(
        self,
        name: object,
        origins: object,
        ip_whitelist: object,
        actor_id: str | None,
        call: CallInfo,
    ) -> Tenant:
        given = valid_name(name)
        try:
            tenant = await self._store.tenants.create(
                given, valid_origins(origins), valid_ip_list(ip_whitelist)
            )
        except UniqueViolation:
            raise _name_taken(given) from None
        # Workers rebuild their index of every tenant's origins (CORS preflights).
        await self._revoker.revoke(TENANT, tenant.id)
        await self._audit.append(
            "tenant_create", "success", call, actor_id=actor_id, tenant_id=tenant.id
        )
        return tenant

    async def get(self, tenant_id: str) -> Tenant:
        tenant = await self._store.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        return tenant

    async def find(self, reference: str) -> Tenant:
        """The tenant of that id or, failing that, of that name (any case)."""
        tenant = await self._store.tenants.get(reference)
        if tenant is None:
            tenant = await self._store.tenants.by_name(reference)
        if tenant is None:
            raise NotFound(f"no such tenant: {reference!r} is neither a tenant's id nor its name")
        return tenant

    async def update(
        self, tenant_id: str, changes: dict[str, Any], actor_id: str | None, call: CallInfo
    ) -> Tenant:
        unknown = set(changes) - {"name", "origins", "ip_whitelist"}
        if unknown:
            raise InvalidRequest("only name, origins and ip_whitelist can change")
        name = valid_name(changes["name"]) if "name" in changes else None
        try:
            tenant = await self._store.tenants.update(
                tenant_id,
                name=name,
                origins=valid_origins(changes["origins"]) if "origins" in changes else None,
                ip_whitelist=(
                    valid_ip_list(changes["ip_whitelist"]) if "ip_whitelist" in changes else None
                ),
            )
        except UniqueViolation:
            raise _name_taken(name or "") from None
        if tenant is None:
            raise NotFound("no such tenant")
        # Every worker drops what it cached of this tenant (whitelists, its keys' grants).
        await self._revoker.revoke(TENANT, tenant_id)
        await self._audit.append(
            "tenant_update",
            "success",
            call,
            actor_id=actor_id,
            tenant_id=tenant_id,
            changed=sorted(changes),
        )
        return tenant

    # -- the policy cache -------------------------------------------------------------------

    def cached_policy(self, tenant_id: str) -> TenantPolicy | None:
        policy = self._policies.get(tenant_id)
        if (
            policy is not None
            and policy.generation == self._revoked.generation
            and policy.until > time.monotonic()
        ):
            self._stats.lookups[TENANT_HIT] += 1
            return policy
        self._stats.lookups[TENANT_MISS] += 1
        return None

    def policy(self, tenant_id: str) -> TenantPolicy | Awaitable[TenantPolicy | None] | None:
        """The tenant's policy: at once when cached, else an awaitable (None: no tenant)."""
        return self.cached_policy(tenant_id) or self.load_policy(tenant_id)

    async def load_policy(self, tenant_id: str) -> TenantPolicy | None:
        generation = self._revoked.generation  # before reading: a change meanwhile wins
        try:
            tenant = await self._read(tenant_id)
        except (DatabaseUnavailable, AuthUnavailable):
            stale = self._policies.get(tenant_id)
            if stale is None or not self._revoker.serves_stale(stale.generation, stale.until):
                raise
            return stale
        if tenant is None:
            return None
        policy = self.policy_of(tenant, generation, self._settings.cache_ttl)
        if len(self._policies) >= MAX_POLICIES:
            self._policies.clear()
        self._policies[tenant_id] = policy
        return policy

    async def _read(self, tenant_id: str) -> Tenant | None:
        tenants = self._store.tenants

        async def load() -> dict[str, Any] | None:
            tenant = await tenants.get(tenant_id)
            return None if tenant is None else tenant.row()

        record, shared = await self._shared.read_through("tenant", tenant_id, load)
        if shared:
            self._stats.lookups[TENANT_SHARED_HIT] += 1
        return None if record is None else Tenant.from_row(record)

    def cached_origin_index(self) -> OriginIndex | None:
        index = self._index
        if (
            index is not None
            and index.generation == self._revoked.generation
            and index.until > time.monotonic()
        ):
            return index
        return None

    async def load_origin_index(self) -> OriginIndex:
        generation = self._revoked.generation
        entries = await self._store.tenants.all_origins()
        origins = OriginWhitelist(origin for _, listed in entries for origin in listed)
        self._index = OriginIndex(origins, generation, time.monotonic() + self._settings.cache_ttl)
        return self._index

    @staticmethod
    def policy_of(tenant: Tenant, generation: int, ttl: float) -> TenantPolicy:
        return TenantPolicy(
            tenant,
            OriginWhitelist(tenant.origins),
            IpWhitelist(tenant.ip_whitelist),
            generation,
            time.monotonic() + ttl,
        )
