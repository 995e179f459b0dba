"""Personal access tokens: a developer's long-lived credential for scripts and
CLIs, `gwp_...`, acting as its user with the user's current roles.

Same format, hashing and caching as API keys (credential_cache.py): a malformed token costs no
database look-up (tokens imported in another backend's format are checked in legacy_pats.py's
way until GATEWAY_LEGACY_PAT_UNTIL); a known one is a dict look-up until a credential or user
revocation arrives, so deleting a token, deleting or disabling its user and changing their
roles take effect in every worker at its next sync.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from auth_core import credentials, legacy_pats
from auth_core.calls import CallInfo
from auth_core.credential_cache import Call, CredentialCache, CredentialDeps
from auth_core.errors import InvalidRequest, InvalidToken, NotFound, TokenExpired
from auth_core.keys import parse_expiry
from auth_core.models import Pat, Principal
from auth_core.revocation import CREDENTIAL
from auth_core.shared_cache import Record
from auth_core.stats import CREDENTIAL_HIT
from auth_core.store.records import Store
from auth_core.tenancy import valid_name
from auth_core.usage import UsageRecorder

MAX_GRANTS = 50_000
MAX_PER_USER = 50
MAX_SCOPES = 32


@dataclass(frozen=True, slots=True)
class PatGrant:
    pat: Pat
    principal: Principal | None  # None: the user is disabled
    generation: int
    until: float
    legacy: bool  # imported in another backend's format


def valid_scopes(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or len(value) > MAX_SCOPES
        or not all(isinstance(item, str) and 0 < len(item) <= 64 for item in value)
    ):
        raise InvalidRequest(f"scopes must be a list of at most {MAX_SCOPES} short strings")
    return tuple(dict.fromkeys(value))


class Pats(CredentialCache[PatGrant]):
    def __init__(
        self,
        *,
        deps: CredentialDeps,
    ) -> None:
        super().__init__("pat", credentials.PAT_PREFIX, MAX_GRANTS, deps)
        self.usage = UsageRecorder(self._write_usage)
        self.legacy_until = deps.settings.legacy_pat_until

    async def _write_usage(self, used: Any) -> None:
        await self._store.pats.touch(used)

    async def create(self, user_id: str, body: dict[str, Any], call: CallInfo) -> tuple[Pat, str]:
        store = self._store
        name = valid_name(body.get("name"))
        scopes = valid_scopes(body.get("scopes"))
        expires_at = parse_expiry(body.get("expires_at"), time.time())
        secret = credentials.generate(credentials.PAT_PREFIX)
        # Counted and added in one transaction that first locks the user's row (PostgreSQL;
        # SQLite's write transaction is exclusive anyway): concurrent creations by several
        # workers cannot all see room for one more.
        async with store.db.transaction() as db:
            records = Store(db)
            await records.users.lock(user_id)
            if await records.pats.count(user_id) >= MAX_PER_USER:
                raise InvalidRequest(f"a user can hold at most {MAX_PER_USER} tokens")
            pat = await records.pats.create(
                user_id,
                credentials.credential_hash(secret),
                credentials.display_prefix(secret),
                name=name,
                scopes=scopes,
                expires_at=expires_at,
            )
        await self._audit.append("pat_create", "success", call, user_id=user_id, pat_id=pat.id)
        return pat, secret

    async def list(self, user_id: str) -> list[Pat]:
        return await self._store.pats.of_user(user_id)

    async def delete(self, user_id: str, pat_id: str, call: CallInfo) -> None:
        if not await self._store.pats.delete(user_id, pat_id):
            raise NotFound("no such token")
        await self._revoker.revoke(CREDENTIAL, pat_id)
        await self._audit.append("pat_delete", "success", call, user_id=user_id, pat_id=pat_id)

    # -- the hot path -----------------------------------------------------------------------

    def authenticate(self, secret: str, call: Call) -> Principal | Awaitable[Principal]:
        """As ApiKeys.authenticate: a hit is one dict look-up by the presented string."""
        grant = self._grants.get(secret)
        if (
            grant is not None
            and grant.generation == self._revoked.generation
            and grant.until > time.monotonic()
        ):
            self._stats.lookups[CREDENTIAL_HIT] += 1
            return self._admit(grant, None, call)
        return self._miss(secret, None, call)

    def _recognised(self, secret: str, call: Call) -> bool:
        if credentials.well_formed(secret, credentials.PAT_PREFIX):
            return True
        until = self.legacy_until
        if until is None or not legacy_pats.legacy_shaped(secret):
            return False
        if time.time() >= until:
            # Not audited, as a malformed token is not: nothing says it was ever imported, and
            # made-up tokens must not become audit writes.
            raise InvalidToken(legacy_pats.retired(until))
        return True

    async def _stored(self, digest: str) -> Record | None:
        """The token with this hash and what its principal needs of its user."""
        store = self._store
        pat = await store.pats.by_hash(digest)
        user = None if pat is None else await store.users.get(pat.user_id)
        if pat is None or user is None:
            return None
        owner = {
            "id": user.id,
            "email": user.email,
            "email_verified": user.email_verified,
            "roles": list(user.roles),
            "tenant_id": user.tenant_id,
            "disabled": user.disabled,
        }
        return {"pat": pat.row(), "user": owner}

    def _shared_usable(self, record: Record) -> bool:
        return isinstance(record.get("pat"), dict) and bool(record.get("user"))

    async def _grant(self, record: Record, generation: int) -> PatGrant:
        pat = Pat.from_row(record["pat"])
        owner = record["user"]
        legacy = legacy_pats.is_legacy(pat.prefix)
        expires_at = pat.expires_at or 0.0
        if legacy and self.legacy_until is not None:
            # The transition's end is the token's expiry too, so that a websocket opened with
            # it before then is closed then (the registry re-checks an open socket's expiry).
            expires_at = min(expires_at or self.legacy_until, self.legacy_until)
        principal = None
        if not owner["disabled"]:
            principal = Principal(
                method="pat",
                user_id=owner["id"],
                email=owner["email"] or None,
                # Absent from an entry another version put in the shared cache: not proven.
                email_verified=owner.get("email_verified") is True,
                roles=tuple(owner["roles"]),
                tenant_id=owner["tenant_id"],
                credential_id=pat.id,
                expires_at=expires_at,
                scopes=pat.scopes,
            )
        return PatGrant(
            pat,
            principal,
            generation,
            time.monotonic() + self._settings.cache_ttl,
            legacy,
        )

    def _refusal(self, reason: str, call: Call, looked_up: bool) -> InvalidToken:
        # Only an unknown token the database was just asked about is audited here.
        if reason == "malformed":
            return InvalidToken("the personal access token is malformed")
        if not looked_up:
            return InvalidToken("the personal access token is not valid")
        self._audit.later("pat", "refused", _info(call), reason="unknown")
        return InvalidToken("the personal access token is not valid", audited=True)

    def _admit(self, grant: PatGrant, ip: str | None, call: Call) -> Principal:
        now = time.time()
        pat = grant.pat
        if grant.principal is None:
            self._audit.later("pat", "refused", _info(call), reason="user_disabled", pat_id=pat.id)
            raise InvalidToken("the personal access token is not valid", audited=True)
        if pat.expires_at is not None and pat.expires_at <= now:
            self._audit.later("pat", "refused", _info(call), reason="expired", pat_id=pat.id)
            raise TokenExpired("the personal access token has expired", audited=True)
        if grant.legacy:
            # A grant cached before the transition ended is refused after it too.
            until = self.legacy_until or 0.0
            if until <= now:
                self._audit.later(
                    "pat", "refused", _info(call), reason="legacy_retired", pat_id=pat.id
                )
                raise InvalidToken(legacy_pats.retired(until), audited=True)
        self.usage.used(pat.id, now)
        return grant.principal


def _info(call: Call) -> CallInfo:
    return call if isinstance(call, CallInfo) else call()
