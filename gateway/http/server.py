"""The set of client connections: their protocol factory, timeouts, and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from email.utils import formatdate

from gateway.http.connection import Handler, HttpConnection
from gateway.http.limits import Limits

__all__ = ["Handler", "HttpServer", "Limits"]

SWEEP_INTERVAL = 1.0


class HttpServer:
    """Makes an HttpConnection per accepted socket and watches them all."""

    def __init__(
        self,
        handler: Handler,
        limits: Limits,
        loop: asyncio.AbstractEventLoop,
        *,
        on_open: Callable[[int], None] | None = None,
        on_refused: Callable[[int, str, str], None] | None = None,
        on_over_limit: Callable[[], None] | None = None,
        exempt: Callable[[str], bool] | None = None,
        extra_headers: bytes = b"",
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.loop = loop
        self.connections: set[HttpConnection] = set()
        # Open connections by peer address, this process's only (each worker counts its own).
        self.per_address: dict[str, int] = {}
        self._on_over_limit = on_over_limit
        self._exempt = exempt
        self.draining = False
        self.date_header = self._date()
        # Header lines every response carries (Strict-Transport-Security on TLS), pre-encoded.
        self.extra_headers = extra_headers
        self._on_open = on_open
        self._on_refused = on_refused
        self._sweeper: asyncio.Task[None] | None = None

    def __call__(self) -> HttpConnection:
        return HttpConnection(self)

    @staticmethod
    def _date() -> bytes:
        return formatdate(usegmt=True).encode()

    def connection_made(self, connection: HttpConnection) -> bool:
        """Admit a new connection; False when its peer address is at its limit already."""
        limit = self.limits.max_connections_per_address
        peer = connection.peer
        if limit and peer:
            count = self.per_address.get(peer, 0)
            if count >= limit and (self._exempt is None or not self._exempt(peer)):
                if self._on_over_limit is not None:
                    self._on_over_limit()
                return False
            self.per_address[peer] = count + 1
            connection.counted = True
        self.connections.add(connection)
        if self._on_open is not None:
            self._on_open(1)
        return True

    def connection_lost(self, connection: HttpConnection) -> None:
        # Every way a connection ends (closed by either side, timed out, aborted, a websocket
        # tunnel's end) comes through here, once: the one place its count is given back.
        if connection.counted:
            connection.counted = False
            peer = connection.peer
            count = self.per_address[peer] - 1
            if count:
                self.per_address[peer] = count
            else:
                del self.per_address[peer]
        if connection in self.connections:
            self.connections.discard(connection)
            if self._on_open is not None:
                self._on_open(-1)

    def refused(self, status: int, request_id: str, peer: str) -> None:
        """A request refused before it could be handled (malformed, too large, too slow)."""
        if self._on_refused is not None:
            self._on_refused(status, request_id, peer)

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = self.loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.date_header = self._date()
            now = self.loop.time()
            for connection in list(self.connections):
                connection.check_timeouts(now)

    async def shutdown(self, grace: float) -> None:
        """Let in-flight requests finish (at most `grace` seconds), closing idle connections at once
        and the others after their current response, then drop whatever is left."""
        self.draining = True
        for connection in list(self.connections):
            connection.close_if_idle()
        deadline = self.loop.time() + grace
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
            for connection in list(self.connections):
                connection.close_if_idle()
        for connection in list(self.connections):
            connection.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
