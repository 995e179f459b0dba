"""The websockets open in this worker: their limits (per client address and per tenant), the
context each one publishes (auth_core.socket_context), and their lifetime.

A socket lives no longer than its credential (docs/websockets.md): four times a second, and at once
when the revocation feed brings anything, every socket's principal is checked again: an access
token revoked (session, token or user) or expired, an API key or PAT revoked, expired or no
longer valid, closes the socket with 1008 to the client and 1001 to the upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from auth_core.calls import CallInfo
from auth_core.errors import GatewayError
from auth_core.models import Principal
from auth_core.service import AuthCore
from auth_core.store import DatabaseUnavailable
from gateway.config import Settings
from gateway.errors import RateLimited
from gateway.websocket.frames import GOING_AWAY, POLICY_VIOLATION
from gateway.websocket.tunnel import Tunnel
from metrics.catalog import Catalog

log = logging.getLogger("gateway")

CHECK_INTERVAL = 0.25  # seconds between lifetime checks of every socket
# Credentials of a session, refused by the revocation set: an access token, and the login
# page's session cookie on a `browser: true` route (its issued_at is the session's start).
_SESSION_METHODS = frozenset({"jwt", "cookie"})


class SocketRegistry:
    def __init__(self, core: AuthCore, catalog: Catalog, settings: Settings) -> None:
        self.core = core
        self.catalog = catalog
        self.settings = settings
        self.tunnels: dict[str, Tunnel] = {}
        self.per_address: Counter[str] = Counter()
        self.per_tenant: Counter[str] = Counter()
        self._generation = core.revoked.generation
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._stored: dict[str, asyncio.Task[None]] = {}  # context writes, by connection id

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        for tunnel in list(self.tunnels.values()):
            tunnel.end(GOING_AWAY, GOING_AWAY, "the gateway is shutting down")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    # -- limits -----------------------------------------------------------------------------

    def admit(self, address: str, tenant_id: str | None) -> None:
        """429 when the address or the tenant holds as many sockets as it may."""
        if self.per_address[address] >= self.settings.ws_max_per_address:
            raise _too_many("this address has too many websockets open")
        if tenant_id is not None and self.per_tenant[tenant_id] >= self.settings.ws_max_per_tenant:
            raise _too_many("this tenant has too many websockets open")

    def reserve(self, address: str, tenant_id: str | None) -> None:
        """Take a place for a socket being opened (429 when there is none): handshakes in
        flight count, so concurrent ones cannot pass a limit together. `release` gives it back
        if the socket does not open; an open socket gives it back when it ends."""
        self.admit(address, tenant_id)
        self.per_address[address] += 1
        if tenant_id is not None:
            self.per_tenant[tenant_id] += 1

    def release(self, address: str, tenant_id: str | None) -> None:
        _decrement(self.per_address, address)
        if tenant_id is not None:
            _decrement(self.per_tenant, tenant_id)

    # -- life -------------------------------------------------------------------------------

    def add(self, tunnel: Tunnel) -> None:
        """An open socket, on the place `reserve` took for it."""
        self.tunnels[tunnel.id] = tunnel
        self.catalog.socket_connections.inc()
        self.catalog.socket_active.set(float(len(self.tunnels)))
        self._stored[tunnel.id] = self._later(self.core.sockets.put(tunnel.id, context_of(tunnel)))

    def remove(self, tunnel: Tunnel) -> None:
        if self.tunnels.pop(tunnel.id, None) is None:
            return
        principal = tunnel.principal
        self.release(tunnel.client_ip, principal.tenant_id if principal else None)
        self.catalog.socket_active.set(float(len(self.tunnels)))
        stored = self._stored.pop(tunnel.id, None)
        self._later(self._forget(tunnel.id, stored))

    async def _forget(self, connection_id: str, stored: asyncio.Task[None] | None) -> None:
        # After the context was stored: a delete that overtook it would leave it behind.
        if stored is not None:
            await asyncio.gather(stored, return_exceptions=True)
        await self.core.sockets.remove(connection_id)

    def _later(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            try:
                await self.check()
            except Exception:  # one bad socket must not stop the watch of the others
                log.exception("checking websocket lifetimes failed")

    async def check(self) -> None:
        """End every socket whose credential is no longer good."""
        if not self.tunnels:
            return
        core = self.core
        now = time.time()
        changed = core.revoked.generation != self._generation
        self._generation = core.revoked.generation
        for tunnel in list(self.tunnels.values()):
            principal = tunnel.principal
            if principal is None or tunnel.ended:
                continue
            reason = self._refusal(principal, now)
            if reason is None and changed and tunnel.secret is not None:
                reason = await self._recheck(tunnel)
            if reason is not None:
                tunnel.end(POLICY_VIOLATION, GOING_AWAY, reason)

    def _refusal(self, principal: Principal, now: float) -> str | None:
        if principal.expires_at and principal.expires_at <= now:
            return "the credential expired"
        revoked = (
            principal.method in _SESSION_METHODS
            and principal.user_id is not None
            and self.core.revoked.refuses(
                principal.user_id, principal.session_id, principal.token_id, principal.issued_at
            )
        )
        return "the credential was revoked" if revoked else None

    async def _recheck(self, tunnel: Tunnel) -> str | None:
        """An API key, PAT or service token, after a credential, tenant or user revocation
        somewhere."""
        assert tunnel.secret is not None
        assert tunnel.principal is not None
        call = CallInfo(ip=tunnel.client_ip)
        try:
            if tunnel.principal.method == "pat":
                found = self.core.pats.authenticate(tunnel.secret, call)
            elif tunnel.principal.method == "service":
                found = self.core.service_tokens.authenticate(tunnel.secret, call)
            else:
                found = self.core.keys.authenticate(tunnel.secret, tunnel.client_ip, call)
            if not isinstance(found, Principal):
                await found
        except GatewayError:
            return "the credential was revoked"
        except DatabaseUnavailable:
            return None  # cannot tell now; the next check tries again
        return None


def context_of(tunnel: Tunnel) -> dict[str, object]:
    principal = tunnel.principal
    return {
        "connection_id": tunnel.id,
        "auth_method": principal.method if principal else "none",
        "user_id": principal.user_id if principal else None,
        "tenant_id": principal.tenant_id if principal else None,
        "roles": list(principal.roles) if principal else [],
        "session_id": principal.session_id if principal else None,
        "credential_id": principal.credential_id if principal else None,
        "client_ip": tunnel.client_ip,
        "connected_at": tunnel.connected_at,
    }


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


def _too_many(detail: str) -> RateLimited:
    return RateLimited(detail, 10)
