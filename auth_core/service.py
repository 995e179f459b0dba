"""The auth core's facade: what the gateway's pipeline and the auth core's API call.

`AuthCore.start()` opens the database, applies migrations, loads the secrets (in the embedded
mode generating them once and storing them, with a warning), and starts following the
revocation table. `authenticate_access_token()` is the hot path: verify the JWT, look up a
small cache, check the revocation set; no database access.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from auth_core.accounts import Accounts
from auth_core.bans import Bans
from auth_core.calls import CallInfo as CallInfo
from auth_core.config import AuthSettings
from auth_core.errors import BY_TOKEN_CODE, AuthUnavailable, InvalidToken, TokenRevoked
from auth_core.feed import RevocationFeed
from auth_core.keys import ApiKeys
from auth_core.limits import Limiter
from auth_core.mail import Mailer
from auth_core.models import Principal
from auth_core.passwords import Passwords
from auth_core.pats import Pats
from auth_core.redis_link import RedisLink
from auth_core.revocation import RevocationSet
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
TOKEN_CACHE_SIZE = 50_000
MAX_PENDING_AUDIT = 1000
CLOSE_WRITES_TIMEOUT = 10.0  # seconds closing waits for background writes to finish
SETTLE_TIMEOUT = 2.0  # seconds the audit log's reader waits for entries still being written


class AuthCore:
    """Identity for one process: users, sessions, tokens, revocation."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.db: Database | None = None
        self.store: Store | None = None
        self.tokens: AccessTokens | None = None
        self.service_keyring: Keyring | None = None
        self.passwords = Passwords(settings.hash_cost)
        self.mailer = Mailer(settings.mail_url)
        self.revoked = RevocationSet()
        self.sessions = Sessions(self)
        self.accounts = Accounts(self)
        self.tenants = Tenants(self)
        self.keys = ApiKeys(self)
        self.pats = Pats(self)
        self.service_tokens = ServiceTokens(self)
        self._token_cache: dict[str, tuple[Principal, float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.redis = (
            RedisLink(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
        )
        self.feed = RevocationFeed(self.redis)
        self.limiter = Limiter(self.redis)
        self.stats = AuthStats()
        self.bans = Bans(self)
        self.shared = SharedCache(self.redis, self.revoked, settings.cache_ttl, self.background)
        self.sockets = SocketContexts(self.redis)
        self._background: set[asyncio.Task[Any]] = set()

    # -- life cycle -----------------------------------------------------------------------

    async def start(self, *, follow: bool = True) -> None:
        self.db = await open_database(self.settings.database_url)
        self.store = Store(self.db)
        applied = await migrate(self.db)
        if applied:
            log.info("database migrated: %s", ", ".join(applied))
        jwt_keyring = self.settings.jwt_keyring or await self._stored_keyring("jwt_secret")
        self.service_keyring = self.settings.service_keyring or await self._stored_keyring(
            "service_secret"
        )
        self.tokens = AccessTokens(
            jwt_keyring,
            issuer=self.settings.issuer,
            audience=self.settings.audience,
            ttl=self.settings.access_ttl,
        )
        await self.revoked.sync(self.store.revocations)
        if follow:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._follow())]
            self.feed.start()

    async def _stored_keyring(self, key: str) -> Keyring:
        # Embedded mode only (AuthSettings refuses PostgreSQL without secrets): the first
        # process to start generates the secret; every other one reads the same value.
        assert self.store is not None
        value = await self.store.settings.put_if_absent(key, Keyring.generate())
        log.warning(
            "%s not set: using a secret generated and stored in the database; "
            "set GATEWAY_%s for production",
            key,
            key.upper(),
        )
        return Keyring.parse(value)

    async def _follow(self) -> None:
        assert self.store is not None
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
                if await self.revoked.sync(self.store.revocations):
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
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background work failed: %s", task.exception())

    async def settle(self, seconds: float = SETTLE_TIMEOUT) -> None:
        """Wait (at most `seconds`) for the background work already begun, such as the
        audit entries of refusals, so that a reader that follows sees what was answered."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=seconds)

    async def close(self) -> None:
        await self.settle(CLOSE_WRITES_TIMEOUT)  # audit entries and other writes under way
        await stop_tasks(self._tasks)
        self._tasks = []
        await self.feed.close()
        if self.redis is not None:
            await self.redis.close()
        if self.db is not None:
            await self.flush_usage()
            await self.db.close()
            self.db = None

    def require_store(self) -> Store:
        if self.store is None:
            raise AuthUnavailable("the auth core is not started")
        return self.store

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
        now = time.time()
        stats = self.stats
        cached = self._token_cache.get(token)
        if cached is not None and cached[1] > now:
            principal = cached[0]
            stats.lookups[TOKEN_HIT] += 1
        else:
            stats.lookups[TOKEN_MISS] += 1
            assert self.tokens is not None
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
        """Whether a cache entry past its lifetime may still answer while the database is
        unreachable: nothing was revoked since it was read, and it is inside the stale window.
        Counted as a stale hit when it may."""
        if generation != self.revoked.generation:
            return False
        if self.feed.announced > self.revoked.last_id:
            return False  # a revocation was announced that could not be read: trust nothing
        if time.monotonic() - until > self.settings.stale_window:
            return False
        self.stats.stale_served += 1
        return True

    # -- revocation -------------------------------------------------------------------------

    async def revoke(self, kind: str, value: str, until: float | None = None) -> None:
        """Record a revocation and apply it here at once (other workers follow the table)."""
        store = self.require_store()
        if until is None:
            # Nothing it names may outlive it: the longest access token issued from now on,
            # nor a cache entry (here, in Redis, or served stale) read before it.
            settings = self.settings
            until = (
                time.time()
                + 60.0
                + max(settings.access_ttl, settings.cache_ttl + settings.stale_window)
            )
        revocation = await store.revocations.add(kind, value, until)
        self.revoked.apply(revocation, read=False)
        self._token_cache.clear()
        self.feed.wake.set()  # read the table up to it (and whatever came just before) now
        await self.feed.announce(revocation.id)

    def audit_later(
        self,
        event: str,
        outcome: str,
        call: CallInfo,
        *,
        user_id: str | None = None,
        **detail: Any,
    ) -> bool:
        """Write an audit entry off the request's path (for refusals, which a flood could send
        by the thousand); False when too many are already waiting and this one is dropped."""
        if len(self._background) >= MAX_PENDING_AUDIT:
            return False
        self.background(self.audit(event, outcome, call, user_id=user_id, **detail))
        return True

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
        store = self.require_store()
        await store.audit.append(
            event,
            outcome,
            user_id=user_id,
            actor_id=actor_id,
            request_id=call.request_id,
            ip=call.ip,
            detail=detail or None,
        )
