"""Upstream targets: kept-alive connections, round-robin balancing and passive health.

A target that fails `max_fails` times in a row (refused, timed out, reset) is taken out for
`fail_timeout` seconds, then tried again; one more failure takes it out again. When every
target of an upstream is out, the one due back soonest is tried anyway: a health guess must
not turn a partial outage into a total one.

An https target connects with its upstream's TLS context, made once when routes.yaml was loaded
(gateway/routing/upstream_tls.py); a reload that changes it keeps no connection made with the
old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Mapping, Set
from typing import Final

from auth_core import headers as h
from gateway.proxy.connection import (
    ConnectFailed,
    ConnectTimedOut,
    UpstreamConnection,
    Watchdog,
)
from gateway.routing.table import Target, Upstream

log = logging.getLogger("gateway.proxy")

SWEEP_INTERVAL = 5.0
_HOST: Final[bytes] = h.W_HOST + b": "


class TargetPool:
    """Idle connections to one target of one upstream, and that target's health."""

    def __init__(
        self,
        target: Target,
        upstream: Upstream,
        loop: asyncio.AbstractEventLoop,
        watchdog: Watchdog,
    ) -> None:
        self.target = target
        self.watchdog = watchdog
        self.host_line = _HOST + target.authority.encode() + b"\r\n"
        host = f"[{target.host}]" if ":" in target.host else target.host
        self.address = f"{host}:{target.port}"  # in logs and metrics
        self.upstream = upstream
        self.loop = loop
        self.idle: deque[UpstreamConnection] = deque()
        self.failures = 0
        self.down_until = 0.0
        self.retired = False
        self.tls: ssl.SSLContext | None = None  # None: plain TCP
        self.server_hostname: str | None = None  # SNI and the name the certificate must bear
        self._use_tls(upstream)

    def _use_tls(self, upstream: Upstream) -> None:
        tls = upstream.tls
        if self.target.scheme == "https" and tls is not None:
            self.tls = tls.context
            self.server_hostname = tls.server_hostname(self.target.host)
        else:
            self.tls = None
            self.server_hostname = None

    def adopt(self, upstream: Upstream) -> None:
        """Take a reloaded table's settings for this target's upstream."""
        old, new = self.upstream.tls, upstream.tls
        if (old.fingerprint if old else "") != (new.fingerprint if new else ""):
            # Made with a CA, certificate or name no longer in force: not to be reused.
            while self.idle:
                self.idle.pop().close()
        self.upstream = upstream
        self._use_tls(upstream)

    def take_idle(self) -> UpstreamConnection | None:
        """The most recently used live idle connection, if any."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self) -> UpstreamConnection:
        """A new connection, within the upstream's connect timeout."""
        target = self.target
        loop = self.loop
        try:
            async with asyncio.timeout(self.upstream.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: UpstreamConnection(loop, self.watchdog),
                    target.host,
                    target.port,
                    ssl=self.tls,
                    server_hostname=self.server_hostname,
                )
        except TimeoutError:
            raise ConnectTimedOut(
                f"connecting to {target.url} took longer than {self.upstream.connect_timeout:g}s"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            # A TLS handshake the upstream cut (an old TLS version, say) is a bare
            # ConnectionResetError(): its class is then the only reason there is to log.
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ConnectFailed(f"cannot connect to {target.url}: {reason}") from None
        return protocol

    def release(self, conn: UpstreamConnection, reusable: bool) -> None:
        """Return a connection after an exchange; keep it only if it can serve another."""
        if not reusable or self.retired or len(self.idle) >= self.upstream.keepalive:
            conn.close()
            return
        conn.idle_since = self.loop.time()
        self.idle.append(conn)

    def expire_idle(self, now: float) -> None:
        idle = self.idle
        limit = self.upstream.idle_timeout
        while idle and (idle[0].closed or now - idle[0].idle_since > limit):
            idle.popleft().close()

    def close(self) -> None:
        self.retired = True
        while self.idle:
            self.idle.pop().close()

    # -- passive health -------------------------------------------------------------------------

    def is_up(self, now: float) -> bool:
        return self.down_until <= now

    def succeeded(self) -> None:
        self.failures = 0
        self.down_until = 0.0

    def failed(self, now: float) -> None:
        max_fails = self.upstream.max_fails
        if max_fails == 0:
            return
        self.failures += 1
        if self.failures >= max_fails and self.down_until <= now:
            self.down_until = now + self.upstream.fail_timeout
            self.failures = max_fails - 1  # when it comes back, one failure takes it out again
            log.warning(
                "target %s of upstream %s taken out for %gs after %d failures",
                self.target.url,
                self.upstream.name,
                self.upstream.fail_timeout,
                max_fails,
            )


class UpstreamGroup:
    """The targets of one upstream, balanced round-robin."""

    def __init__(self, upstream: Upstream, pools: list[TargetPool]) -> None:
        self.upstream = upstream
        self.pools = pools
        self._next = 0

    def choose(self, tried: Set[TargetPool], now: float) -> TargetPool | None:
        """The next target to try, skipping `tried` and targets that are out."""
        pools = self.pools
        count = len(pools)
        start = self._next
        for offset in range(count):
            pool = pools[(start + offset) % count]
            if pool not in tried and pool.is_up(now):
                self._next = (start + offset + 1) % count
                return pool
        waiting = [pool for pool in pools if pool not in tried]
        if not waiting:
            return None
        return min(waiting, key=lambda pool: pool.down_until)


class UpstreamPools:
    """Every upstream's group; survives reloads, keeping the connections of unchanged targets."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.groups: dict[str, UpstreamGroup] = {}
        self.watchdog = Watchdog(loop)
        self._tasks: list[asyncio.Task[None]] = []

    def update(self, upstreams: Mapping[str, Upstream]) -> None:
        """Adopt a new table's upstreams; pools whose target is gone are closed."""
        old = {
            (name, pool.target.url): pool
            for name, group in self.groups.items()
            for pool in group.pools
        }
        groups: dict[str, UpstreamGroup] = {}
        kept: set[int] = set()
        for name, upstream in upstreams.items():
            pools: list[TargetPool] = []
            for target in upstream.targets:
                pool = old.get((name, target.url))
                if pool is None:
                    pool = TargetPool(target, upstream, self.loop, self.watchdog)
                else:
                    pool.adopt(upstream)
                    kept.add(id(pool))
                pools.append(pool)
            groups[name] = UpstreamGroup(upstream, pools)
        self.groups = groups
        for pool in old.values():
            if id(pool) not in kept:
                pool.close()

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                self.loop.create_task(self._sweep()),
                self.loop.create_task(self.watchdog.run()),
            ]

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = self.loop.time()
            for group in self.groups.values():
                for pool in group.pools:
                    pool.expire_idle(now)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for group in self.groups.values():
            for pool in group.pools:
                pool.close()
