"""The auth core's facade: what the gateway's pipeline and the auth core's API call.

`AuthCore.start()` opens the database, applies migrations, loads the secrets (in the embedded
mode generating them once and storing them, with a warning), builds the services (accounts,
sessions, tenants, keys, PATs, service tokens, bans) with what each uses, and starts following
the revocation table. No service holds the core: each is given the store, the settings, the
AuditTrail, the Revoker and whichever other service it calls.

`authenticate_access_token()` is the hot path: verify the JWT, look up a small cache, check the
revocation set; no database access.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any, Final

from auth_core.accounts import Accounts
from auth_core.audit import AuditTrail
from auth_core.background import Background
from auth_core.bans import Bans
from auth_core.calls import CallInfo as CallInfo
from auth_core.config import AuthSettings
from auth_core.cookie_sessions import CookieSessions
from auth_core.credential_cache import CredentialDeps
from auth_core.errors import BY_TOKEN_CODE, InvalidToken, TokenRevoked
from auth_core.feed import RevocationFeed
from auth_core.keys import ApiKeys
from auth_core.limits import Limiter
from auth_core.mail import Mailer
from auth_core.models import Principal
from auth_core.passwords import Passwords
from auth_core.pats import Pats
from auth_core.redis_link import RedisLink
from auth_core.revocation import RevocationSet
from auth_core.revoker import Revoker
from auth_core.sdk import SdkSessions
from auth_core.service_tokens import ServiceTokens
from auth_core.sessions import Sessions
from auth_core.shared_cache import SharedCache
from auth_core.socket_context import SocketContexts
from auth_core.stats import MAX_DURATIONS, TOKEN_HIT, TOKEN_MISS, AuthStats
from auth_core.store import Database, DatabaseUnavailable, open_database
from auth_core.store.migrate import migrate
from auth_core.store.records import Store
from auth_core.tasks import stop_tasks
from auth_core.tenancy import Tenants
from auth_core.tokens import AccessTokens, Keyring, TokenError
from auth_core.usage import FLUSH_INTERVAL

log = logging.getLogger("auth_core")

PRUNE_INTERVAL = 60.0
TOKEN_CACHE_SIZE: Final = 50_000
# A C static once compiled; `time.time()` is an attribute look-up on the module first (every
# access token checked).
_time: Final = time.time
CLOSE_WRITES_TIMEOUT = 10.0  # seconds closing waits for background writes to finish
SETTLE_TIMEOUT = 2.0  # seconds the audit log's reader waits for entries still being written


class AuthCore:
    """Identity for one process: users, sessions, tokens, revocation.

    What exists before the database does is made here; `start()` opens the store and builds
    the services on it, each given what it uses. Nothing calls a service before `start()`:
    the gateway and the CLI start the core before they build anything that reaches it.
    """

    # Built by start(), once the store is open.
    store: Store
    tokens: AccessTokens
    service_keyring: Keyring
    audit_trail: AuditTrail
    revoker: Revoker
    sessions: Sessions
    cookie_sessions: CookieSessions
    accounts: Accounts
    sdk: SdkSessions
    tenants: Tenants
    keys: ApiKeys
    pats: Pats
    service_tokens: ServiceTokens
    bans: Bans

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.db: Database | None = None  # None: not opened yet, or closed
        self.passwords = Passwords(settings.hash_cost)
        self.mailer = Mailer(settings.mail_url)
        self.revoked = RevocationSet()
        self._token_cache: dict[str, tuple[Principal, float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.redis = (
            RedisLink(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
        )
        self.feed = RevocationFeed(self.redis)
        self.limiter = Limiter(self.redis)
        self.stats = AuthStats()
        self.background_work = Background()
        self.shared = SharedCache(
            self.redis, self.revoked, settings.cache_ttl, self.background_work.run
        )
        self.sockets = SocketContexts(self.redis)
        self._built = False  # the services exist (start() got that far)

    # -- life cycle -----------------------------------------------------------------------

    async def start(self, *, follow: bool = True) -> None:
        self.db = await open_database(self.settings.database_url)
        store = self.store = Store(self.db)
        applied = await migrate(self.db)
        if applied:
            log.info("database migrated: %s", ", ".join(applied))
        generated = [
            name
            for name, given in (
                ("jwt_secret", self.settings.jwt_keyring),
                ("service_secret", self.settings.service_keyring),
            )
            if given is None
        ]
        jwt_keyring = self.settings.jwt_keyring or await self._stored_keyring("jwt_secret")
        self.service_keyring = self.settings.service_keyring or await self._stored_keyring(
            "service_secret"
        )
        if generated and follow:
            # Said once, by a serving process: an administration command (follow=False) uses
            # the same stored secrets and has nothing to add (docs/operations/cli.md).
            log.warning(
                "%s not set: using secrets generated and stored in the database; "
                "set them for production",
                " and ".join(f"GATEWAY_{name.upper()}" for name in generated),
            )
        self.tokens = AccessTokens(
            jwt_keyring,
            issuer=self.settings.issuer,
            audience=self.settings.audience,
            ttl=self.settings.access_ttl,
        )
        self._build(store)
        await self.revoked.sync(store.revocations)
        if follow:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._follow())]
            self.feed.start()

    def _build(self, store: Store) -> None:
        """The services over the open store, each given what it uses."""
        settings = self.settings
        revoked = self.revoked
        stats = self.stats
        audit = self.audit_trail = AuditTrail(store, self.background_work)
        revoker = self.revoker = Revoker(
            store, revoked, self.feed, settings, stats, self._token_cache
        )
        sessions = self.sessions = Sessions(
            store=store,
            settings=settings,
            audit=audit,
            revoker=revoker,
            tokens=self.tokens,
            passwords=self.passwords,
            stats=stats,
            redis=self.redis,
        )
        self.cookie_sessions = CookieSessions(
            store=store,
            keyring=self.tokens.keyring,
            sessions=sessions,
            revoked=revoked,
            revoker=revoker,
            cache_ttl=settings.cache_ttl,
        )
        self.accounts = Accounts(
            store=store,
            audit=audit,
            revoker=revoker,
            sessions=sessions,
            passwords=self.passwords,
            mailer=self.mailer,
            background=self.background_work,
        )
        self.sdk = SdkSessions(store=store, audit=audit, sessions=sessions)
        shared = self.shared
        deps = CredentialDeps(
            store=store,
            settings=settings,
            audit=audit,
            revoker=revoker,
            revoked=revoked,
            stats=stats,
            shared=shared,
        )
        tenants = self.tenants = Tenants(deps=deps)
        self.keys = ApiKeys(deps=deps, tenants=tenants)
        self.pats = Pats(deps=deps)
        self.service_tokens = ServiceTokens(deps=deps)
        self.bans = Bans(
            store=store,
            settings=settings,
            audit=audit,
            revoker=revoker,
            revoked=revoked,
            redis=self.redis,
            background=self.background_work,
        )
        self._built = True

    async def _stored_keyring(self, key: str) -> Keyring:
        # Embedded mode only (AuthSettings refuses PostgreSQL without secrets): the first
        # process to start generates the secret; every other one reads the same value.
        value = await self.store.settings.put_if_absent(key, Keyring.generate())
        return Keyring.parse(value)

    async def _follow(self) -> None:
        revocations = self.store.revocations
        last_prune = last_flush = time.monotonic()
        feed = self.feed
        unreadable = False
        while True:
            # Woken by a push (a revocation anywhere), else after the feed's interval.
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the wake-up does, and close() would wait on this loop for ever.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(feed.interval):
                    await feed.wake.wait()
            feed.wake.clear()
            try:
                if await self.revoked.sync(revocations):
                    self._token_cache.clear()
            except DatabaseUnavailable as exc:
                if not unreadable:  # once an outage, not twenty times a second
                    log.warning("cannot read revocations: %s", exc)
                unreadable = True
            else:
                if unreadable:
                    log.info("reading revocations again")
                unreadable = False
            now = time.monotonic()
            if now - last_flush > FLUSH_INTERVAL:
                last_flush = now
                await self.flush_usage()
            if now - last_prune > PRUNE_INTERVAL:
                last_prune = now
                self.revoked.prune()

    async def flush_usage(self) -> None:
        """Write the `last_used_at` of keys, PATs and service tokens used since the last flush."""
        await self.keys.usage.flush()
        await self.pats.usage.flush()
        await self.service_tokens.usage.flush()

    def background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` without waiting for it (kept referenced; failures are logged)."""
        self.background_work.run(work)

    async def settle(self, seconds: float = SETTLE_TIMEOUT) -> None:
        """Wait (at most `seconds`) for the background work already begun, such as the
        audit entries of refusals, so that a reader that follows sees what was answered."""
        await self.background_work.settle(seconds)

    async def close(self) -> None:
        await self.settle(CLOSE_WRITES_TIMEOUT)  # audit entries and other writes under way
        await stop_tasks(self._tasks)
        self._tasks = []
        await self.feed.close()
        if self.redis is not None:
            await self.redis.close()
        if self.db is not None:
            if self._built:
                await self.flush_usage()
            await self.db.close()
            self.db = None

    async def ready(self) -> bool:
        if self.db is None:
            return False
        try:
            await self.db.ping()
        except DatabaseUnavailable:
            return False
        return True

    # -- the hot path -------------------------------------------------------------------------

    def authenticate_access_token(self, token: str) -> Principal:
        """The principal of a valid, unrevoked access token; a GatewayError otherwise."""
        now = _time()
        stats = self.stats
        cached = self._token_cache.get(token)
        if cached is not None and cached[1] > now:
            principal = cached[0]
            stats.lookups[TOKEN_HIT] += 1
        else:
            stats.lookups[TOKEN_MISS] += 1
            started = time.perf_counter()
            try:
                claims = self.tokens.verify(token, now)
            except TokenError as exc:
                stats.validations[exc.code] += 1
                raise BY_TOKEN_CODE.get(exc.code, InvalidToken)(exc.detail) from None
            finally:
                if len(stats.validation_seconds) < MAX_DURATIONS:
                    stats.validation_seconds.append(time.perf_counter() - started)
            principal = Principal(
                method="jwt",
                user_id=claims.subject,
                email=claims.email,
                email_verified=claims.email_verified,
                roles=claims.roles,
                tenant_id=claims.tenant_id,
                session_id=claims.session_id,
                token_id=claims.token_id,
                issued_at=claims.issued_at,
                expires_at=claims.expires_at,
            )
            cache = self._token_cache
            if len(cache) >= TOKEN_CACHE_SIZE:
                cache.clear()
            cache[token] = (principal, claims.expires_at)
        assert principal.user_id is not None
        if self.revoked.refuses(
            principal.user_id, principal.session_id, principal.token_id, principal.issued_at
        ):
            stats.validations["token_revoked"] += 1
            raise TokenRevoked("the token has been revoked")
        stats.validations["ok"] += 1
        return principal

    def serves_stale(self, generation: int, until: float) -> bool:
        """Revoker.serves_stale (for the gateway's own caches)."""
        return self.revoker.serves_stale(generation, until)

    # -- revocation and the audit log (for the gateway and the auth core's API) -------------

    async def revoke(self, kind: str, value: str, until: float | None = None) -> None:
        """Record a revocation and apply it here at once (other workers follow the table)."""
        await self.revoker.revoke(kind, value, until)

    def audit_later(
        self,
        event: str,
        outcome: str,
        call: CallInfo,
        *,
        user_id: str | None = None,
        **detail: Any,
    ) -> bool:
        """AuditTrail.later: an entry off the request's path; False when it is dropped."""
        return self.audit_trail.later(event, outcome, call, user_id=user_id, **detail)

    async def audit(
        self,
        event: str,
        outcome: str,
        call: CallInfo,
        *,
        user_id: str | None = None,
        actor_id: str | None = None,
        **detail: Any,
    ) -> None:
        await self.audit_trail.append(
            event, outcome, call, user_id=user_id, actor_id=actor_id, **detail
        )
