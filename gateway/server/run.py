"""A worker's life: serve on a bound socket, reload on SIGHUP or a change of routes.yaml,
and on SIGTERM stop accepting, drain in-flight requests within the grace period, then exit."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from pathlib import Path

from auth_core.service import AuthCore
from auth_core.tasks import stop_tasks
from gateway.config import Settings
from gateway.http.server import HttpServer, Limits
from gateway.routing.table import RouteTable
from gateway.server.app import Gateway
from gateway.server.reload import ConfigWatcher

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
    ) -> None:
        self.settings = settings
        self.table = table
        self.sock = sock
        self.config_path = Path(config_path) if config_path else None
        self.metrics_dir = metrics_dir
        self.gateway: Gateway | None = None
        self.core: AuthCore | None = None
        self.server: HttpServer | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: ConfigWatcher | None = None
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
        )
        server.start()
        self._listener = await loop.create_server(server, sock=self.sock, backlog=BACKLOG)
        if self.metrics_dir is not None:
            self._tasks.append(loop.create_task(self._publish_metrics()))
        if self.config_path is not None and settings.watch_config:
            self._watcher = ConfigWatcher(
                self.config_path, settings.reload_interval, gateway.reload
            )
            self._watcher.start()

    def reload(self) -> bool:
        return self.gateway.reload() if self.gateway is not None else False

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
        if self._watcher is not None:
            await self._watcher.stop()
        await self.server.shutdown(self.settings.drain_timeout)
        await stop_tasks(self._tasks)
        self._tasks.clear()
        await self.gateway.close()
        self.gateway = None
        if self.core is not None:
            await self.core.close()
            self.core = None
        self._stopped.set()

    async def serve_until_signalled(self) -> None:
        """Run until SIGTERM or SIGINT; SIGHUP reloads routes.yaml."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        await self.start()
        log.info("worker serving on port %d", self.port)
        await stop.wait()
        log.info("draining (up to %gs)", self.settings.drain_timeout)
        await self.stop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
