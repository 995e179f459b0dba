"""How a session lives and dies: login, refresh (rotating), logout, status, extend, revoke.

A session is a row; its refresh tokens rotate on every use and only their hashes are stored.
Presenting a refresh token that was already spent means it was stolen or replayed: the whole
session is revoked (RFC 9700 section 4.14.2). Logout and revocation also refuse every access
token of the session at once (revocation set), not at its expiry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auth_core.audit import AuditTrail
from auth_core.config import AuthSettings
from auth_core.errors import (
    EmailNotVerified,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    RateLimited,
)
from auth_core.models import Principal, Session, User
from auth_core.passwords import Passwords
from auth_core.redis_link import RedisLink
from auth_core.revocation import SESSION, USER
from auth_core.revoker import Revoker
from auth_core.stats import AuthStats
from auth_core.store.records import Store
from auth_core.throttle import FailureWindow, LoginThrottle, account_subject
from auth_core.tokens import AccessTokens, opaque_token, token_hash

if TYPE_CHECKING:
    from auth_core.calls import CallInfo

REFRESH_PREFIX = "gwr_"
NOT_VERIFIED = (
    "confirm your e-mail address first with the token mailed to you "
    "(POST /api/v1/auth/verify-email); for a new mail, POST /api/v1/auth/verify-email/resend "
    "with your email"
)
ADDRESS_LIMIT = 20  # failed logins from one address ...
ADDRESS_WINDOW = 10 * 60.0  # ... within this window, then 429


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session: Session
    user: User

    def body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "session_id": self.session.id,
            "user": self.user.public(),
        }


class Sessions:
    def __init__(
        self,
        *,
        store: Store,
        settings: AuthSettings,
        audit: AuditTrail,
        revoker: Revoker,
        tokens: AccessTokens,
        passwords: Passwords,
        stats: AuthStats,
        redis: RedisLink | None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._audit = audit
        self._revoker = revoker
        self._tokens = tokens
        self._passwords = passwords
        self._stats = stats
        self.address_failures = FailureWindow(ADDRESS_LIMIT, ADDRESS_WINDOW)
        # Failed logins per (account, address) pair and per account.
        self.throttle = LoginThrottle(redis)
        # (account, address) pair -> its lock and how many tries hold or await it
        self._trying: dict[str, tuple[asyncio.Lock, int]] = {}

    async def login(self, email: str, password: str, call: CallInfo) -> TokenPair:
        """A new session for the right password; InvalidCredentials, the same in content and
        in time, for a wrong password, an unknown account or a disabled one. RateLimited while
        this account, from this address, has to wait after failures in a row (the same for an
        unknown account: it is counted by the address typed), or while the account as a whole
        has had far too many."""
        address = call.ip or "-"
        subject = account_subject(email)
        # One try at a time per pair (in this process): tries sent at once would otherwise all
        # pass the checks below before the first of them had failed and been counted.
        async with self._turn(f"{subject}|{address}"):
            return await self._login(email, password, call, subject, address)

    @asynccontextmanager
    async def _turn(self, pair: str) -> AsyncIterator[None]:
        lock, count = self._trying.get(pair) or (asyncio.Lock(), 0)
        self._trying[pair] = (lock, count + 1)
        try:
            async with lock:
                yield
        finally:
            lock, count = self._trying[pair]
            if count == 1:
                del self._trying[pair]
            else:
                self._trying[pair] = (lock, count - 1)

    async def _login(
        self, email: str, password: str, call: CallInfo, subject: str, address: str
    ) -> TokenPair:
        store = self._store
        audit = self._audit
        wait = self.address_failures.blocked(address)
        if wait:
            await audit.append("login", "throttled", call, email=email.lower())
            raise RateLimited(
                "too many failed logins from this address",
                wait,
                limit=ADDRESS_LIMIT,
                policy=f"{ADDRESS_LIMIT};w={int(ADDRESS_WINDOW)}",
                audited=True,
            )
        hold = await self.throttle.held(subject, address)
        if hold is not None:
            await audit.append("login", "throttled", call, email=email.lower(), scope=hold.scope)
            raise RateLimited(
                "too many failed logins for this account"
                + (" from this address" if hold.scope == "pair" else "")
                + "; retry after the time in Retry-After",
                hold.seconds,
                audited=True,
            )
        user = await store.users.by_email(email)
        usable = user is not None and not user.disabled
        stored = user.password_hash if usable and user is not None else None
        matches = await asyncio.to_thread(self._passwords.verify, stored, password)
        if not (usable and matches) or user is None:
            self.address_failures.fail(address)
            # Counted alike for every account, known or not: the same work, the same time.
            await self.throttle.failed(subject, address)
            reason = "unknown" if user is None else ("disabled" if not usable else "password")
            await audit.append(
                "login",
                "failure",
                call,
                user_id=user.id if user is not None else None,
                email=email.lower(),
                reason=reason,
            )
            raise InvalidCredentials("the e-mail or password is not right", audited=True)
        await self.throttle.succeeded(subject, address)
        if self.unverified(user):
            # Said only to whoever knows the password: it tells nothing to a guesser.
            await audit.append("login", "unverified", call, user_id=user.id)
            raise EmailNotVerified(NOT_VERIFIED, audited=True)
        await store.users.login_succeeded(user.id)
        if stored is not None and self._passwords.needs_rehash(stored):
            # An imported bcrypt/pbkdf2 hash, or old argon2 parameters: upgrade it now that
            # the password is known.
            rehashed = await asyncio.to_thread(self._passwords.hash, password)
            await store.users.set_password_hash(user.id, rehashed)
        pair = await self.open(user, call)
        await audit.append("login", "success", call, user_id=user.id, session_id=pair.session.id)
        return pair

    def unverified(self, user: User) -> bool:
        """Whether GATEWAY_REQUIRE_VERIFIED_EMAIL keeps this user out: on, and an address not
        confirmed. A tenant's SDK end user (external id) is vouched for by the tenant's API
        key and has no address of ours to confirm."""
        return (
            self._settings.require_verified_email
            and not user.email_verified
            and user.external_id is None
        )

    async def open(self, user: User, call: CallInfo) -> TokenPair:
        """A new session and token pair for `user` (login, SDK sessions)."""
        store = self._store
        settings = self._settings
        session = await store.sessions.create(
            user.id, settings.refresh_ttl, call.ip, call.user_agent
        )
        refresh = opaque_token(REFRESH_PREFIX)
        await store.refresh_tokens.add(token_hash(refresh), session.id, session.expires_at)
        access = self._access(user, session.id)
        self._stats.sessions_opened += 1
        return TokenPair(access, refresh, int(settings.access_ttl), session, user)

    def _access(self, user: User, session_id: str) -> str:
        token, _ = self._tokens.issue(
            subject=user.id,
            session_id=session_id,
            roles=user.roles,
            tenant_id=user.tenant_id,
            email=user.email,
            email_verified=user.email_verified,
        )
        return token

    async def refresh(
        self, refresh_token: str, call: CallInfo, *, tenant_id: str | None = None
    ) -> TokenPair:
        """A new pair for a live refresh token, which is spent; reuse revokes the session.
        With `tenant_id` (SDK backends), a token of another tenant's user is refused before
        anything is spent."""
        store = self._store
        audit = self._audit
        if not refresh_token.startswith(REFRESH_PREFIX) or len(refresh_token) > 128:
            raise InvalidToken("the refresh token is not valid")
        if tenant_id is not None and await self.tenant_of(refresh_token) != tenant_id:
            raise InvalidToken("the refresh token is not valid")
        spent = await store.refresh_tokens.spend(token_hash(refresh_token))
        if spent.state == "reused":
            assert spent.session_id is not None
            await self._end(spent.session_id, "refresh token reused")
            await audit.append("refresh", "reuse_detected", call, session_id=spent.session_id)
            raise InvalidToken(
                "the refresh token was already used; the session is revoked", audited=True
            )
        if spent.state != "ok" or spent.session_id is None:
            await audit.append("refresh", "failure", call, reason=spent.state)
            raise InvalidToken("the refresh token is not valid", audited=True)
        session = await store.sessions.get(spent.session_id)
        now = time.time()
        user = await store.users.get(session.user_id) if session is not None else None
        if session is None or not session.active(now) or user is None or user.disabled:
            await audit.append("refresh", "failure", call, reason="session ended")
            raise InvalidToken("the session has ended", audited=True)
        if self.unverified(user):
            # A session opened before the setting was on, or before an admin marked the
            # address unconfirmed: it ends here, and a login after confirming opens another.
            await self._end(session.id, "e-mail not verified")
            await audit.append("refresh", "unverified", call, user_id=user.id)
            raise EmailNotVerified(NOT_VERIFIED, audited=True)
        expires_at = now + self._settings.refresh_ttl
        await store.sessions.refreshed(session.id, expires_at)
        refresh = opaque_token(REFRESH_PREFIX)
        await store.refresh_tokens.add(token_hash(refresh), session.id, expires_at)
        access = self._access(user, session.id)
        await audit.append("refresh", "success", call, user_id=user.id, session_id=session.id)
        refreshed = await store.sessions.get(session.id)
        assert refreshed is not None
        return TokenPair(access, refresh, int(self._settings.access_ttl), refreshed, user)

    async def logout(self, principal: Principal, call: CallInfo) -> None:
        """End the caller's session: its refresh tokens and every access token die now."""
        assert principal.session_id is not None
        await self._end(principal.session_id, "logout")
        await self._audit.append(
            "logout", "success", call, user_id=principal.user_id, session_id=principal.session_id
        )

    async def tenant_of(self, refresh_token: str) -> str | None:
        """The tenant of the user a refresh token was issued to (None: none, or unknown)."""
        store = self._store
        owner = await store.refresh_tokens.owner(token_hash(refresh_token))
        if owner is None:
            return None
        user = await store.users.get(owner[1])
        return None if user is None else user.tenant_id

    async def end_by_refresh_token(
        self, refresh_token: str, tenant_id: str, call: CallInfo
    ) -> bool:
        """End the session a refresh token belongs to, if its user is of the tenant."""
        store = self._store
        owner = await store.refresh_tokens.owner(token_hash(refresh_token))
        if owner is None:
            return False
        session_id, user_id = owner
        user = await store.users.get(user_id)
        if user is None or user.tenant_id != tenant_id:
            return False
        await self._end(session_id, "logout")
        await self._audit.append("logout", "success", call, user_id=user_id, session_id=session_id)
        return True

    async def end_by_cookie(self, refresh_token: str, call: CallInfo) -> None:
        """Log out the session a browser's cookie holds the refresh token of (an unknown or
        spent token ends nothing: the cookie is cleared all the same)."""
        owner = await self._store.refresh_tokens.owner(token_hash(refresh_token))
        if owner is None:
            return
        session_id, user_id = owner
        await self._end(session_id, "logout")
        await self._audit.append("logout", "success", call, user_id=user_id, session_id=session_id)

    async def revoke_session(self, session_id: str, reason: str) -> None:
        await self._end(session_id, reason)

    async def _end(self, session_id: str, reason: str) -> None:
        store = self._store
        await store.sessions.revoke(session_id, reason)
        await store.refresh_tokens.forget_session(session_id)
        await self._revoker.revoke(SESSION, session_id)

    async def revoke_user(self, user_id: str, reason: str) -> list[str]:
        """End every session of a user and void every token issued to them so far."""
        store = self._store
        ended = await store.sessions.revoke_all(user_id, reason)
        for session_id in ended:
            await store.refresh_tokens.forget_session(session_id)
        await self._revoker.revoke(USER, user_id)
        return ended

    async def status(self, principal: Principal) -> dict[str, Any]:
        session = await self._live(principal)
        return {
            "active": True,
            "session_id": session.id,
            "user_id": session.user_id,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
            "access_token_expires_at": principal.expires_at,
        }

    async def extend(self, principal: Principal, call: CallInfo) -> dict[str, Any]:
        """Push the session's end out by the refresh lifetime; a fresh access token."""
        store = self._store
        session = await self._live(principal)
        user = await store.users.get(session.user_id)
        if user is None or user.disabled:
            raise InvalidToken("the session has ended")
        if self.unverified(user):
            raise EmailNotVerified(NOT_VERIFIED)
        expires_at = time.time() + self._settings.refresh_ttl
        await store.sessions.refreshed(session.id, expires_at)
        await store.refresh_tokens.extend(session.id, expires_at)
        await self._audit.append(
            "session_extend", "success", call, user_id=user.id, session_id=session.id
        )
        return {
            "session_id": session.id,
            "expires_at": expires_at,
            "access_token": self._access(user, session.id),
            "token_type": "Bearer",
            "expires_in": int(self._settings.access_ttl),
        }

    async def _live(self, principal: Principal) -> Session:
        store = self._store
        if principal.session_id is None:
            raise NotFound("this credential has no session")
        session = await store.sessions.get(principal.session_id)
        if session is None or not session.active(time.time()):
            raise InvalidToken("the session has ended")
        return session
