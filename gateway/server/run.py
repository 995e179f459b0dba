"""A worker's life: serve on a bound socket (over TLS when certificates are given), reload on
SIGHUP or a change of routes.yaml or of the certificates, and on SIGTERM stop accepting, drain
in-flight requests within the grace period, then exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from pathlib import Path
from typing import Final

from auth_core import headers as h
from auth_core.errors import SettingsError
from auth_core.service import AuthCore
from auth_core.store import DatabaseUnavailable
from auth_core.tasks import stop_tasks
from gateway.config import Settings
from gateway.http.server import HttpServer, Limits
from gateway.routing.table import RouteTable
from gateway.server.app import Gateway
from gateway.server.reload import ConfigWatcher
from gateway.server.startup import StartupFailed
from gateway.tls.certificates import Certificates
from gateway.tls.listener import TlsListener
from gateway.tls.redirect import HttpsRedirect

log = logging.getLogger("gateway.server")

METRICS_PUBLISH_INTERVAL = 1.0
BACKLOG = 2048


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, shared by every worker process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and host in ("::", ""):
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # v4 clients too
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


_HSTS: Final[bytes] = h.W_STRICT_TRANSPORT_SECURITY + b": max-age=%d\r\n"


def hsts_header(max_age: int) -> bytes:
    """The Strict-Transport-Security line of every answer on TLS (RFC 6797); none for 0."""
    return _HSTS % max_age if max_age else b""


class Worker:
    """Serves the gateway on `sock` in the running event loop."""

    def __init__(
        self,
        settings: Settings,
        table: RouteTable,
        sock: socket.socket,
        *,
        config_path: str | Path | None = None,
        metrics_dir: str | Path | None = None,
        certificates: Certificates | None = None,
        redirect_sock: socket.socket | None = None,
    ) -> None:
        self.settings = settings
        self.table = table
        self.sock = sock
        # Loaded before the workers were forked (their listener context, and its session
        # ticket keys, shared by all); each worker reloads the certificates behind it.
        self.certificates = certificates
        self.redirect_sock = redirect_sock
        self.config_path = Path(config_path) if config_path else None
        self.metrics_dir = metrics_dir
        self.gateway: Gateway | None = None
        self.core: AuthCore | None = None
        self.server: HttpServer | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._tls_listener: TlsListener | None = None
        self._redirect: tuple[asyncio.AbstractServer, HttpServer] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._watchers: list[ConfigWatcher] = []
        self._stopped = asyncio.Event()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        self.core = AuthCore(settings.auth)
        await self.core.start()
        gateway = self.gateway = Gateway(
            settings,
            self.table,
            core=self.core,
            config_path=self.config_path,
            metrics_dir=self.metrics_dir,
            tls=self.certificates is not None,
        )
        limits = Limits(
            max_head_size=settings.max_header_size,
            max_headers=settings.max_headers,
            header_timeout=settings.header_timeout,
            keepalive_timeout=settings.keepalive_timeout,
            body_timeout=settings.body_timeout,
            max_connections_per_address=settings.max_connections_per_address,
        )
        server = self.server = HttpServer(
            gateway.handle,
            limits,
            loop,
            on_open=gateway.catalog.active_connections.inc_by,
            on_refused=gateway.refused,
            on_over_limit=gateway.catalog.connections_over_limit.inc,
            # A trusted proxy carries many clients' connections: the limit is not for it.
            exempt=gateway.resolver.is_trusted,
            extra_headers=hsts_header(settings.hsts_max_age) if self.certificates else b"",
        )
        server.start()
        certificates = self.certificates
        if certificates is None:
            self._listener = await loop.create_server(server, sock=self.sock, backlog=BACKLOG)
        else:
            # A worker the supervisor restarts inherits the certificates as they were loaded
            # at start-up: read them again, or a renewal since would be undone in it.
            self.reload_certificates()
            failures = gateway.catalog.tls_handshake_failures
            self._tls_listener = TlsListener(
                self.sock,
                server,
                certificates,
                loop,
                handshake_timeout=settings.header_timeout,
                on_failure=lambda reason: failures.inc((reason,)),
            )
            self._tls_listener.start()
        if self.redirect_sock is not None:
            redirect = HttpServer(HttpsRedirect(self.port), limits, loop)
            redirect.start()
            listener = await loop.create_server(redirect, sock=self.redirect_sock, backlog=BACKLOG)
            self._redirect = (listener, redirect)
        if self.metrics_dir is not None:
            self._tasks.append(loop.create_task(self._publish_metrics()))
        if settings.watch_config:
            if self.config_path is not None:
                self._watchers.append(
                    ConfigWatcher(self.config_path, settings.reload_interval, gateway.reload)
                )
            if certificates is not None:
                self._watchers.append(
                    ConfigWatcher(
                        certificates.watched, settings.reload_interval, self.reload_certificates
                    )
                )
            for watcher in self._watchers:
                watcher.start()

    def reload(self) -> bool:
        """SIGHUP: routes.yaml and the certificates, each kept as it was when refused."""
        routes = self.gateway.reload() if self.gateway is not None else False
        certificates = self.reload_certificates() if self.certificates is not None else True
        return routes and certificates

    def reload_certificates(self) -> bool:
        if self.certificates is None or self.gateway is None:
            return False
        result = self.certificates.reload()
        if result != "unchanged":
            self.gateway.catalog.tls_certificate_reloads.inc((result,))
        return result != "refused"

    async def _publish_metrics(self) -> None:
        assert self.gateway is not None
        while True:
            await asyncio.sleep(METRICS_PUBLISH_INTERVAL)
            try:
                self.gateway.metrics.publish()
            except OSError as exc:
                log.warning("cannot publish metrics: %s", exc)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the drain timeout), close."""
        if self.gateway is None or self.server is None:
            return
        self.gateway.operations.draining = True
        if self._listener is not None:
            self._listener.close()
        if self._tls_listener is not None:
            self._tls_listener.close()
        for watcher in self._watchers:
            await watcher.stop()
        self._watchers.clear()
        if self._redirect is not None:
            listener, redirect = self._redirect
            listener.close()
            await redirect.shutdown(0)
            self._redirect = None
        await self.server.shutdown(self.settings.drain_timeout)
        await stop_tasks(self._tasks)
        self._tasks.clear()
        await self.gateway.close()
        self.gateway = None
        if self.core is not None:
            await self.core.close()
            self.core = None
        self._stopped.set()

    async def abandon(self) -> None:
        """Release what a failed start had opened."""
        if self.gateway is not None or self.server is not None:
            return  # started far enough for stop() to be the way out; the process exits anyway
        if self.core is not None:
            with contextlib.suppress(Exception):
                await self.core.close()
            self.core = None

    async def serve_until_signalled(self) -> None:
        """Run until SIGTERM or SIGINT; SIGHUP reloads routes.yaml and the certificates."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        try:
            await self.start()
        except (DatabaseUnavailable, SettingsError, OSError) as exc:
            # The database gone since the supervisor checked it, say: one line, no traceback.
            await self.abandon()
            raise StartupFailed(str(exc)) from None
        if self.gateway is not None:
            # The table came from the supervisor, parsed when it started: a worker it restarts,
            # or one that a SIGHUP reached before it could act on one, would serve an old
            # table. The file is the truth (an unchanged one costs a parse and changes nothing).
            self.gateway.reload()
        log.info("worker serving on port %d", self.port)
        await stop.wait()
        log.info("draining (up to %gs)", self.settings.drain_timeout)
        await self.stop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
