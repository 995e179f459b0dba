"""Browser sessions by cookie: the login page's session cookie, signed, and checked on the hot
path without a database read per request (docs/login-and-browsers.md).

The cookie names a real session of the `sessions` table (one the login page opened with the
same rules as the API's login) and nothing else: `v1.<kid>.<session id>.<signature>`, the
signature an HMAC-SHA256 over the session id with a key derived from the access tokens' secret
(GATEWAY_JWT_SECRET; its `kid` says which entry, so rotation works as it does for tokens). A
cookie whose signature is wrong proves nothing and is treated as absent.

What a session grants (its user, roles, tenant) is read from the database once and cached by
the presented cookie, like an API key (credential_cache.py):

- every hit checks the revocation set: a logout or a revoked session is refused at once, in
  every worker and replica (the set follows the revocation table; feed.py);
- a user revocation (password reset, role change, disabling, deletion, revoke-sessions) voids
  every grant read before it (`RevocationSet.generation`): the next request reads the session
  and the user again, so new roles apply and ended sessions are refused;
- a grant is read again after `GATEWAY_AUTH_CACHE_TTL` anyway, and never outlives its session;
  while the database is unreachable a grant may answer within the stale window, as keys do.

A session revocation stays in the set longer than a grant read before it can live (revoker.py:
the cache lifetime plus the stale window, and a minute), so nothing revoked comes back.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from auth_core.errors import AuthUnavailable, GatewayError, TokenExpired, TokenRevoked
from auth_core.models import Principal
from auth_core.revocation import RevocationSet
from auth_core.revoker import Revoker
from auth_core.sessions import Sessions
from auth_core.store import DatabaseUnavailable
from auth_core.store.records import Store
from auth_core.tokens import Keyring

VERSION = "v1"
METHOD = "cookie"  # X-Auth-Method of requests authenticated by the session cookie
MAX_COOKIE = 256  # characters; anything longer is not ours
MAX_GRANTS = 50_000
MAX_ENDED = 10_000
_KEY_LABEL = b"gateway login cookie v1"
_FORM_LABEL = b"gateway login form v1"


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """What a worker caches of one session cookie."""

    principal: Principal
    generation: int
    until: float  # time.monotonic() after which the session is read again


class CookieSessions:
    """Sign session cookies, and turn a presented one into its principal."""

    def __init__(
        self,
        *,
        store: Store,
        keyring: Keyring,
        sessions: Sessions,
        revoked: RevocationSet,
        revoker: Revoker,
        cache_ttl: float,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._revoked = revoked
        self._revoker = revoker
        self._cache_ttl = cache_ttl
        # Derived, never the JWT secret itself: a cookie signature is no token signature.
        self._keys = {
            kid: hmac.digest(secret, _KEY_LABEL, "sha256") for kid, secret in keyring.keys
        }
        self._kid = keyring.current[0]
        self._form_key = hmac.digest(keyring.current[1], _FORM_LABEL, "sha256")
        self._grants: dict[str, SessionGrant] = {}
        # Cookies of sessions found ended: refused from memory (an ended session never comes
        # back), so that a dead cookie sent again and again is not a database read each time.
        self._ended: dict[str, TokenRevoked | TokenExpired] = {}
        self._loading: dict[tuple[str, int], asyncio.Future[SessionGrant]] = {}

    # -- the cookie's value -----------------------------------------------------------------

    def sign(self, session_id: str) -> str:
        """The cookie value for a session."""
        return f"{VERSION}.{self._kid}.{session_id}.{self._signature(self._kid, session_id)}"

    def session_of(self, value: str) -> str | None:
        """The session id a cookie value names when its signature is ours, else None."""
        if len(value) > MAX_COOKIE:
            return None
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != VERSION or parts[1] not in self._keys:
            return None
        expected = self._signature(parts[1], parts[2])
        if not hmac.compare_digest(expected.encode(), parts[3].encode("utf-8", "replace")):
            return None
        return parts[2]

    def form_token(self, purpose: str, bound_to: str) -> str:
        """The token of one of the login page's forms, bound to what only the browser that
        got the form holds (a pre-session cookie's nonce, or the session): a CSRF token."""
        mac = hmac.digest(self._form_key, f"{purpose}\n{bound_to}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def form_token_ok(self, purpose: str, bound_to: str, token: str) -> bool:
        expected = self.form_token(purpose, bound_to)
        return hmac.compare_digest(expected.encode(), token.encode("utf-8", "replace"))

    def _signature(self, kid: str, session_id: str) -> str:
        mac = hmac.digest(self._keys[kid], session_id.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    # -- the hot path -----------------------------------------------------------------------

    def authenticate(self, value: str) -> Principal | Awaitable[Principal] | None:
        """The principal of a live session's cookie (an awaitable when it must be read);
        None for a cookie that is not ours (ignored as if absent); TokenRevoked or TokenExpired
        for one whose session has ended."""
        grant = self._grants.get(value)
        revoked = self._revoked
        if (
            grant is not None
            and grant.generation == revoked.generation
            and grant.until > time.monotonic()
        ):
            return self._admit(grant.principal)
        ended = self._ended.get(value)
        if ended is not None:
            raise type(ended)(ended.detail)
        session_id = self.session_of(value)
        if session_id is None:
            return None
        return self._load(value, session_id)

    def _admit(self, principal: Principal) -> Principal:
        if principal.session_id in self._revoked.sessions:
            raise TokenRevoked("the session has ended")
        return principal

    async def _load(self, value: str, session_id: str) -> Principal:
        # Requests that miss on one cookie together wait for one read (only a read begun
        # after every revocation known here is joined).
        flight = (value, self._revoked.generation)
        pending = self._loading.get(flight)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(value, session_id))
            self._loading[flight] = pending
            pending.add_done_callback(lambda _: self._loading.pop(flight, None))
        grant = await asyncio.shield(pending)
        return self._admit(grant.principal)

    def _end(self, value: str, error: TokenRevoked | TokenExpired) -> GatewayError:
        if len(self._ended) >= MAX_ENDED:
            self._ended.clear()
        self._ended[value] = error
        return error

    async def _fetch(self, value: str, session_id: str) -> SessionGrant:
        generation = self._revoked.generation  # before reading: a revocation meanwhile wins
        now = time.time()
        try:
            session = await self._store.sessions.get(session_id)
            user = await self._store.users.get(session.user_id) if session is not None else None
        except (DatabaseUnavailable, AuthUnavailable):
            stale = self._grants.get(value)
            if stale is None or not self._revoker.serves_stale(stale.generation, stale.until):
                raise
            if stale.principal.expires_at <= now:
                raise TokenExpired("the session has expired; log in again") from None
            return stale
        if session is None or session.revoked_at is not None or user is None or user.disabled:
            raise self._end(value, TokenRevoked("the session has ended"))
        if session.expires_at <= now:
            raise self._end(value, TokenExpired("the session has expired; log in again"))
        if self._sessions.unverified(user):
            # Not remembered: confirming the address lets the session in again.
            raise TokenRevoked("the session has ended: the e-mail address is not confirmed")
        principal = Principal(
            method=METHOD,
            user_id=user.id,
            email=user.email,
            email_verified=user.email_verified,
            roles=user.roles,
            tenant_id=user.tenant_id,
            session_id=session.id,
            issued_at=session.created_at,
            expires_at=session.expires_at,
        )
        lifetime = min(self._cache_ttl, session.expires_at - now)
        grant = SessionGrant(principal, generation, time.monotonic() + lifetime)
        if len(self._grants) >= MAX_GRANTS:
            self._grants.clear()
        self._grants[value] = grant
        return grant
