"""Worker processes sharing one listening socket, and the supervisor that keeps them running.

The supervisor binds the socket, forks the workers (each runs its own uvloop), restarts a
worker that dies unexpectedly, forwards SIGHUP, and on SIGTERM or SIGINT passes the signal on
and waits for the workers to drain, killing any still running after the grace period.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from gateway.config import Settings
from gateway.routing.table import RouteTable
from gateway.server.run import Worker
from gateway.server.startup import EXIT_START_FAILED, StartupFailed, bind_or_fail, check_database
from gateway.tls.certificates import Certificates

log = logging.getLogger("gateway.supervisor")

RESTART_BACKOFF_MAX = 10.0
POLL_INTERVAL = 0.1
STABLE_AFTER = 30.0  # seconds a worker must live for its next crash to count as the first
# Workers of one slot failing to start this many times in a row: the supervisor gives up (exit
# 1) rather than hold the port with nothing answering on it.
MAX_START_FAILURES = 3


@dataclass(frozen=True, slots=True)
class Listeners:
    """What the supervisor binds and loads once, for every worker to share."""

    sock: socket.socket
    certificates: Certificates | None = None
    redirect_sock: socket.socket | None = None


def run_worker(
    settings: Settings,
    table: RouteTable,
    listeners: Listeners,
    config_path: Path | None,
    metrics_dir: str | None,
) -> None:
    """Serve in this process until signalled (the body of every worker)."""
    worker = Worker(
        settings,
        table,
        listeners.sock,
        config_path=config_path,
        metrics_dir=metrics_dir,
        certificates=listeners.certificates,
        redirect_sock=listeners.redirect_sock,
    )
    try:
        import uvloop

        uvloop.run(worker.serve_until_signalled())
    except ImportError:  # pragma: no cover - uvloop is a dependency; Windows lacks it
        import asyncio

        asyncio.run(worker.serve_until_signalled())


class Supervisor:
    """Keeps `count` workers alive on `sock`."""

    def __init__(
        self,
        settings: Settings,
        table: RouteTable,
        listeners: Listeners,
        count: int,
        config_path: Path | None,
    ) -> None:
        self.settings = settings
        self.table = table
        self.listeners = listeners
        self.count = count
        self.config_path = config_path
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started)
        self.stopping = False
        self._hup = False
        self._failures: dict[int, int] = {}
        self._restart_at: dict[int, float] = {}
        self._start_failures: dict[int, int] = {}
        self.gave_up = False
        self.metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                # Not SIG_DFL, which ends the process: a SIGHUP that comes while this worker
                # starts must not kill it. It is not lost either: the worker reads routes.yaml
                # again once it serves (Worker.serve_until_signalled).
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                run_worker(
                    self.settings, self.table, self.listeners, self.config_path, self.metrics_dir
                )
            except StartupFailed as exc:
                print(f"gateway: worker {slot}: {exc}", file=sys.stderr)
                code = EXIT_START_FAILED
            except BaseException:
                log.exception("worker failed")
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = (slot, time.monotonic())
        log.info("worker %d started (pid %d)", slot, pid)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._hup = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        try:
            for slot in range(self.count):
                self._spawn(slot)
            self._watch()
            return self._shutdown()
        finally:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _watch(self) -> None:
        while not self.stopping:
            if self._hup:
                self._hup = False
                self._signal_all(signal.SIGHUP)
            self._reap(restart=True)
            now = time.monotonic()
            for slot, due in list(self._restart_at.items()):
                if due <= now and not self.stopping:
                    del self._restart_at[slot]
                    self._spawn(slot)
            time.sleep(POLL_INTERVAL)

    def _reap(self, *, restart: bool) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            slot, started = child
            code = os.waitstatus_to_exitcode(status)
            if not restart or self.stopping:
                continue
            if self._gives_up(slot, code):
                return
            # Back off only when a worker keeps dying young (a crash loop).
            young = time.monotonic() - started < STABLE_AFTER
            failures = self._failures.get(slot, 0) + 1 if young else 1
            self._failures[slot] = failures
            delay = min(RESTART_BACKOFF_MAX, 0.1 * 2 ** (failures - 1))
            log.error(
                "worker %d (pid %d) exited with %d; restarting in %.1fs", slot, pid, code, delay
            )
            self._restart_at[slot] = time.monotonic() + delay

    def _gives_up(self, slot: int, code: int) -> bool:
        """Count the slot's failed starts in a row; True (and stopping) when there are too many."""
        failed = self._start_failures.get(slot, 0) + 1 if code == EXIT_START_FAILED else 0
        self._start_failures[slot] = failed
        if failed < MAX_START_FAILURES:
            return False
        print(
            f"gateway: worker {slot} failed to start {failed} times in a row; giving up",
            file=sys.stderr,
        )
        self.gave_up = self.stopping = True
        return True

    def _signal_all(self, sig: int) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _shutdown(self) -> int:
        log.info("stopping %d workers", len(self.children))
        # Our copy of the listening socket would keep accepting connections nobody answers.
        self.listeners.sock.close()
        if self.listeners.redirect_sock is not None:
            self.listeners.redirect_sock.close()
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.drain_timeout + 5.0
        while self.children and time.monotonic() < deadline:
            self._reap(restart=False)
            time.sleep(POLL_INTERVAL)
        if self.children:
            log.error("killing %d workers that did not drain in time", len(self.children))
            self._signal_all(signal.SIGKILL)
            while self.children:
                self._reap(restart=False)
                time.sleep(POLL_INTERVAL)
        return 1 if self.gave_up else 0


def serve(
    settings: Settings,
    table: RouteTable,
    *,
    host: str,
    port: int,
    workers: int,
    config_path: Path | None,
) -> int:
    """Bind and serve with `workers` processes (in this process when there is one)."""
    from gateway.server.run import bind

    # Certificates first: a bad one stops start-up (SettingsError, one line) before any bind;
    # then the database, once for every worker; then the ports (StartupFailed, one line).
    certificates = Certificates(settings) if settings.tls else None
    check_database(settings.auth.database_url)
    sock = bind_or_fail(bind, host, port)
    redirect_port = settings.http_redirect_port
    redirect_sock = bind_or_fail(bind, host, redirect_port) if redirect_port is not None else None
    listeners = Listeners(sock, certificates, redirect_sock)
    scheme = "https" if certificates is not None else "http"
    log.info("listening on %s %s:%d with %d worker(s)", scheme, host, port, workers)
    if certificates is not None:
        log.info("TLS certificates: %s", ", ".join(certificates.names))
    if redirect_port is not None:
        log.info("redirecting http %s:%d to https", host, redirect_port)
    if workers == 1:
        run_worker(settings, table, listeners, config_path, None)
        return 0
    return Supervisor(settings, table, listeners, workers, config_path).run()
