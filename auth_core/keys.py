"""API keys of tenants: created, listed, rotated with a grace period, revoked, and
checked on every request of an SDK backend together with the IP whitelists.

The check is cheap when the key was seen before: the key's format and checksum (no database
for a malformed key), its SHA-256, one dict look-up for the cached grant (the key, its
tenant's policy, the key's own CIDR list), the expiry and the client address. A grant is read
again when a credential, tenant or user revocation arrived since it was cached
(`RevocationSet.generation`), so revoking or rotating a key and changing a whitelist take effect
in every worker at its next sync. Unknown keys are remembered briefly (negative cache) so that
a flood of made-up but well-formed keys does not become a flood of queries. That cache, the
same for personal access tokens and service tokens, is credential_cache.py.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from auth_core import credentials
from auth_core.calls import CallInfo
from auth_core.credential_cache import Call, CredentialCache, CredentialDeps
from auth_core.errors import Conflict, InvalidApiKey, InvalidRequest, IpNotAllowed, NotFound
from auth_core.iplists import IpWhitelist
from auth_core.models import ApiKey, Principal
from auth_core.revocation import CREDENTIAL
from auth_core.shared_cache import Record
from auth_core.stats import CREDENTIAL_HIT
from auth_core.store.records import Store
from auth_core.tenancy import TenantPolicy, Tenants, valid_ip_list, valid_name
from auth_core.units import parse_duration
from auth_core.usage import UsageRecorder

MAX_GRANTS = 50_000
DEFAULT_GRACE = 24 * 3600.0
MAX_GRACE = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a worker caches of one key."""

    key: ApiKey
    policy: TenantPolicy
    key_ips: IpWhitelist | None
    principal: Principal
    generation: int
    until: float


def parse_expiry(value: object, now: float) -> float | None:
    """`expires_at` as Unix seconds, or a duration from now such as "90d"; None: no expiry."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= now:
            raise InvalidRequest("expires_at must be in the future")
        return float(value)
    if isinstance(value, str):
        try:
            return now + parse_duration(value)
        except ValueError:
            pass
    raise InvalidRequest('expires_at must be Unix seconds or a duration such as "90d"')


class ApiKeys(CredentialCache[KeyGrant]):
    def __init__(
        self,
        *,
        deps: CredentialDeps,
        tenants: Tenants,
    ) -> None:
        super().__init__("key", credentials.API_KEY_PREFIX, MAX_GRANTS, deps)
        self._tenants = tenants
        self.usage = UsageRecorder(self._write_usage)

    async def _write_usage(self, used: Any) -> None:
        await self._store.api_keys.touch(used)

    # -- administration ---------------------------------------------------------------------

    async def create(
        self,
        tenant_id: str,
        *,
        name: object = None,
        expires: object = None,
        allow_ips: object = None,
        actor_id: str | None,
        call: CallInfo,
    ) -> tuple[ApiKey, str]:
        """A new key of the tenant and its secret (shown once)."""
        store = self._store
        await self._tenants.get(tenant_id)
        secret = credentials.generate(credentials.API_KEY_PREFIX)
        key = await store.api_keys.create(
            tenant_id,
            credentials.credential_hash(secret),
            credentials.display_prefix(secret),
            name=None if name is None else valid_name(name),
            allow_ips=None if allow_ips is None else valid_ip_list(allow_ips),
            expires_at=parse_expiry(expires, time.time()),
        )
        await self._audit.append(
            "api_key_create", "success", call, actor_id=actor_id, tenant_id=tenant_id, key_id=key.id
        )
        return key, secret

    async def get(self, key_id: str, tenant_id: str | None = None) -> ApiKey:
        """The key; NotFound also when it belongs to another tenant than `tenant_id`."""
        key = await self._store.api_keys.get(key_id)
        if key is None or (tenant_id is not None and key.tenant_id != tenant_id):
            raise NotFound("no such API key")
        return key

    async def rotate(
        self,
        key_id: str,
        grace: object,
        *,
        tenant_id: str | None,
        actor_id: str | None,
        call: CallInfo,
    ) -> tuple[ApiKey, str, ApiKey]:
        """A successor for the key (same tenant, name, CIDRs and remaining lifetime); the old
        key keeps working for `grace` (primary and secondary), then only the new one does."""
        old = await self.get(key_id, tenant_id)
        now = time.time()
        if not old.usable(now) or old.rotated_to is not None:
            raise Conflict("only a live key that was not rotated before can be rotated")
        seconds = DEFAULT_GRACE if grace is None else _grace(grace)
        store = self._store
        secret = credentials.generate(credentials.API_KEY_PREFIX)
        async with store.db.transaction() as db:
            records = Store(db).api_keys
            new = await records.create(
                old.tenant_id,
                credentials.credential_hash(secret),
                credentials.display_prefix(secret),
                name=old.name,
                allow_ips=old.allow_ips,
                expires_at=old.expires_at,
            )
            retired = await records.retire(old.id, new.id, now + seconds)
            if retired is None:
                raise Conflict("the key was rotated or revoked meanwhile")
        await self._revoker.revoke(CREDENTIAL, old.id)
        await self._audit.append(
            "api_key_rotate",
            "success",
            call,
            actor_id=actor_id,
            tenant_id=old.tenant_id,
            key_id=old.id,
            new_key_id=new.id,
            grace_seconds=seconds,
        )
        return new, secret, retired

    async def revoke(
        self, key_id: str, *, tenant_id: str | None, actor_id: str | None, call: CallInfo
    ) -> ApiKey:
        key = await self.get(key_id, tenant_id)
        revoked = await self._store.api_keys.revoke(key.id)
        if revoked is None:
            return key  # revoked before: nothing changes
        await self._revoker.revoke(CREDENTIAL, key.id)
        await self._audit.append(
            "api_key_revoke",
            "success",
            call,
            actor_id=actor_id,
            tenant_id=key.tenant_id,
            key_id=key.id,
        )
        return revoked

    # -- the hot path -----------------------------------------------------------------------

    def authenticate(
        self, secret: str, ip: str | None, call: Call
    ) -> Principal | Awaitable[Principal]:
        """The principal of a usable key presented from an allowed address: at once when the
        key is cached, else an awaitable. InvalidApiKey / IpNotAllowed otherwise. `call`
        describes the request for the audit log (a callable: made only for a refusal)."""
        grant = self._grants.get(secret)
        if (
            grant is not None
            and grant.generation == self._revoked.generation
            and grant.until > time.monotonic()
        ):
            self._stats.lookups[CREDENTIAL_HIT] += 1
            return self._admit(grant, ip, call)
        return self._miss(secret, ip, call)

    async def _stored(self, digest: str) -> Record | None:
        key = await self._store.api_keys.by_hash(digest)
        return None if key is None else key.row()

    async def _grant(self, record: Record, generation: int) -> KeyGrant | None:
        key = ApiKey.from_row(record)
        tenants = self._tenants
        policy = tenants.cached_policy(key.tenant_id) or await tenants.load_policy(key.tenant_id)
        if policy is None:
            return None
        return KeyGrant(
            key,
            policy,
            None if key.allow_ips is None else IpWhitelist(key.allow_ips),
            Principal(
                method="api_key",
                tenant_id=key.tenant_id,
                credential_id=key.id,
                expires_at=key.expires_at or 0.0,
            ),
            generation,
            time.monotonic() + self._settings.cache_ttl,
        )

    def _refusal(self, reason: str, call: Call, looked_up: bool) -> InvalidApiKey:
        return self._refused(reason, call)

    def _admit(self, grant: KeyGrant, ip: str | None, call: Call) -> Principal:
        key = grant.key
        now = time.time()
        if key.revoked_at is not None:
            raise self._refused("revoked", call, key)
        if key.expires_at is not None and key.expires_at <= now:
            raise self._refused("expired", call, key)
        # `ip` is None only for an internal caller that asks about a key without naming
        # the client's address (validate-api-key); the gateway always passes one.
        if ip is not None and self._settings.ip_whitelist_enabled:
            if not grant.policy.ips.allows(ip):
                raise self._refused_ip(call, key, "tenant")
            if grant.key_ips is not None and not grant.key_ips.allows(ip):
                raise self._refused_ip(call, key, "key")
        self.usage.used(key.id, now)
        return grant.principal

    def _refused(self, reason: str, call: Call, key: ApiKey | None = None) -> InvalidApiKey:
        self._audit.later(
            "api_key",
            "refused",
            call if isinstance(call, CallInfo) else call(),
            reason=reason,
            key_id=None if key is None else key.id,
            tenant_id=None if key is None else key.tenant_id,
        )
        detail = {
            "malformed": "the API key is malformed",
            "revoked": "the API key has been revoked",
            "expired": "the API key has expired",
        }.get(reason, "the API key is not valid")
        return InvalidApiKey(detail, audited=True)

    def _refused_ip(self, call: Call, key: ApiKey, whitelist: str) -> IpNotAllowed:
        self._audit.later(
            "api_key",
            "refused",
            call if isinstance(call, CallInfo) else call(),
            reason="ip_not_allowed",
            whitelist=whitelist,
            key_id=key.id,
            tenant_id=key.tenant_id,
        )
        return IpNotAllowed(
            "requests with this key are not accepted from this address", audited=True
        )


def _grace(value: object) -> float:
    seconds: float
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise InvalidRequest('grace must be seconds or a duration such as "24h"') from None
    else:
        raise InvalidRequest('grace must be seconds or a duration such as "24h"')
    if not 0 <= seconds <= MAX_GRACE:
        raise InvalidRequest("grace must be between 0 and 30 days")
    return seconds
