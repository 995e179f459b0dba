"""Service tokens: the credentials of internal services (`Authorization: Service gws_...`),
one a calling service, for `auth: service` routes and the internal endpoints.

They are credentials of their own, never the key that signs context headers: whoever reads a
token in an upstream's request log can call as that one service until it is revoked, and
cannot forge an identity. Same format, hashing and caching as API keys (credential_cache.py): a
malformed token costs no database look-up; a known one is one dict look-up until a credential
revocation arrives, so revoking a token refuses it in every worker and replica at their next
sync; unknown well-formed tokens are refused from memory for a while.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from auth_core import credentials
from auth_core.calls import CallInfo
from auth_core.credential_cache import Call, CredentialCache, CredentialDeps
from auth_core.errors import Conflict, InvalidRequest, InvalidToken, NotFound
from auth_core.models import Principal, ServiceToken
from auth_core.revocation import CREDENTIAL
from auth_core.shared_cache import Record
from auth_core.stats import CREDENTIAL_HIT
from auth_core.store import UniqueViolation as StoreConflict
from auth_core.usage import UsageRecorder

MAX_GRANTS = 10_000
# A name is what logs and audit entries show of a service: no spaces or control characters.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DETAIL = {
    "malformed": "the service token is malformed",
    "revoked": "the service token has been revoked",
}


@dataclass(frozen=True, slots=True)
class ServiceGrant:
    """What a worker caches of one token."""

    token: ServiceToken
    principal: Principal
    generation: int
    until: float


def valid_service_name(value: object) -> str:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise InvalidRequest(
            "name must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


class ServiceTokens(CredentialCache[ServiceGrant]):
    def __init__(
        self,
        *,
        deps: CredentialDeps,
    ) -> None:
        super().__init__("service_token", credentials.SERVICE_TOKEN_PREFIX, MAX_GRANTS, deps)
        self.usage = UsageRecorder(self._write_usage)

    async def _write_usage(self, used: Any) -> None:
        await self._store.service_tokens.touch(used)

    # -- administration ---------------------------------------------------------------------

    async def create(
        self, name: object, *, actor_id: str | None, call: CallInfo
    ) -> tuple[ServiceToken, str]:
        """A new token and its secret (shown once); Conflict when a live token has the name."""
        valid = valid_service_name(name)
        secret = credentials.generate(credentials.SERVICE_TOKEN_PREFIX)
        try:
            token = await self._store.service_tokens.create(
                valid, credentials.credential_hash(secret), credentials.display_prefix(secret)
            )
        except StoreConflict:
            raise Conflict(f"a live service token is named {valid}") from None
        await self._audit.append(
            "service_token_create",
            "success",
            call,
            actor_id=actor_id,
            service_token_id=token.id,
            name=token.name,
        )
        return token, secret

    async def list(self) -> list[ServiceToken]:
        return await self._store.service_tokens.list()

    async def revoke(self, token_id: str, *, actor_id: str | None, call: CallInfo) -> ServiceToken:
        """Revoke a token everywhere at once; revoking a revoked token changes nothing."""
        store = self._store
        revoked = await store.service_tokens.revoke(token_id)
        if revoked is None:
            known = await store.service_tokens.get(token_id)
            if known is None:
                raise NotFound("no such service token")
            return known
        await self._revoker.revoke(CREDENTIAL, revoked.id)
        await self._audit.append(
            "service_token_revoke",
            "success",
            call,
            actor_id=actor_id,
            service_token_id=revoked.id,
            name=revoked.name,
        )
        return revoked

    # -- the hot path -----------------------------------------------------------------------

    def authenticate(self, secret: str, call: Call) -> Principal | Awaitable[Principal]:
        """The principal of a live token: at once when it is cached, else an awaitable;
        InvalidToken otherwise. `call` describes the request for the audit log (a callable:
        made only for a refusal)."""
        grant = self._grants.get(secret)
        if (
            grant is not None
            and grant.generation == self._revoked.generation
            and grant.until > time.monotonic()
        ):
            self._stats.lookups[CREDENTIAL_HIT] += 1
            return self._admit(grant, None, call)
        return self._miss(secret, None, call)

    async def _stored(self, digest: str) -> Record | None:
        token = await self._store.service_tokens.by_hash(digest)
        return None if token is None else token.row()

    async def _grant(self, record: Record, generation: int) -> ServiceGrant:
        token = ServiceToken.from_row(record)
        return ServiceGrant(
            token,
            Principal(method="service", credential_id=token.id),
            generation,
            time.monotonic() + self._settings.cache_ttl,
        )

    def _refusal(self, reason: str, call: Call, looked_up: bool) -> InvalidToken:
        return self._refused(reason, call)

    def _admit(self, grant: ServiceGrant, ip: str | None, call: Call) -> Principal:
        token = grant.token
        if token.revoked_at is not None:
            raise self._refused("revoked", call, token)
        self.usage.used(token.id, time.time())
        return grant.principal

    def _refused(
        self,
        reason: str,
        call: Call,
        token: ServiceToken | None = None,
    ) -> InvalidToken:
        self._audit.later(
            "service_token",
            "refused",
            call if isinstance(call, CallInfo) else call(),
            reason=reason,
            service_token_id=None if token is None else token.id,
            name=None if token is None else token.name,
        )
        return InvalidToken(_DETAIL.get(reason, "the service token is not valid"), audited=True)
