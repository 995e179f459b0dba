"""The gateway's own Python per request, without sockets: CPU microseconds a request.

`bench/run` measures what a client sees; this measures what the gateway's code costs, apart
from the kernel and the event loop. One worker's Gateway and HttpServer are built as `gateway
serve` builds them (auth core, access log to a file, metrics), client connections and kept-
alive upstream connections are given transports that only count writes, and the same bodiless
request is fed to each client connection in turn, the upstream's answer fed back when the
gateway has sent the request on. bench/floor.py's protocols run in the same harness, so the two
figures compare: the difference is what the gateway's features cost in Python.

    .venv/bin/python bench/inprocess.py                   # auth: jwt, then the floor
    .venv/bin/python bench/inprocess.py --route none --profile 30
    .venv/bin/python bench/inprocess.py --compiled        # the mypyc build (setup.py)

The figure is the fastest of `--repeats` timed batches (process CPU time): on a shared VM the
fastest is the least disturbed. Pin it to a CPU (taskset -c 1) for steadier figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import uvloop

# Not the checkout: `gateway` is whichever build this interpreter has installed (.venv's editable
# install, or .venv-compiled's mypyc build with --compiled).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import floor
import harness

from gateway import compiled

CONNECTIONS = 32
UPSTREAM_ANSWER = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 03:00:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n%b"
    % (len(harness.UPSTREAM_BODY), harness.UPSTREAM_BODY.encode())
)


class CountingTransport:
    """A client's side of a connection: counts the answers written to it, by status."""

    def __init__(self) -> None:
        self.statuses: Counter[bytes] = Counter()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.statuses[data[9:12]] += 1

    def writelines(self, data: Any) -> None:
        self.write(b"".join(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class UpstreamTransport(CountingTransport):
    """An upstream's side: a request written to it is answered when the driver says so."""

    def __init__(self, protocol: Any, answers: deque[Any]) -> None:
        super().__init__()
        self.writes = 0
        self.protocol = protocol
        self.answers = answers

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.answers.append(self.protocol)


class Batch:
    """Serves `n` requests: one per client connection in turn, then the upstream answers to
    all of them, as a loaded event loop would see them."""

    def __init__(self, clients: list[Any], request: bytes, answers: deque[Any]) -> None:
        self.clients = clients
        self.request = request
        self.answers = answers

    async def __call__(self, n: int) -> None:
        clients, request, answers = self.clients, self.request, self.answers
        for _ in range(n // len(clients)):
            for client in clients:
                client.data_received(request)
            # The event loop runs until every client is answered: a request served by the
            # connection's task needs its steps (bench/floor.py answers from the callbacks).
            while True:
                while answers:
                    answers.popleft().data_received(UPSTREAM_ANSWER)
                if not any(c.busy or c.queue for c in clients if hasattr(c, "queue")):
                    break
                await asyncio.sleep(0)

    def statuses(self) -> str:
        """The answers the clients got, by status ("200: 244000")."""
        total: Counter[bytes] = Counter()
        for client in self.clients:
            total += client.transport.statuses
        return ", ".join(f"{status.decode()}: {n}" for status, n in sorted(total.items()))


async def warm_up(batch: Batch) -> None:
    """Rounds of one request a connection with the event loop let run until every answer is
    in: a credential's first look-up waits for the database, and the timed batches (which do
    not let the loop run) must find every connection idle and every credential cached."""
    for _ in range(20):
        await batch(CONNECTIONS)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            while batch.answers:
                batch.answers.popleft().data_received(UPSTREAM_ANSWER)
            if not any(getattr(c, "busy", False) or getattr(c, "queue", ()) for c in batch.clients):
                break
            await asyncio.sleep(0.001)


async def timed(batch: Batch, args: argparse.Namespace) -> float:
    """Microseconds of process CPU a request (the fastest batch)."""
    await batch(args.requests)  # warm-up: code paths taken, caches filled
    profile = cProfile.Profile() if args.profile else None
    figures = []
    for _ in range(args.repeats):
        started = time.process_time()
        if profile is not None:
            profile.enable()
        await batch(args.requests)
        if profile is not None:
            profile.disable()
        figures.append((time.process_time() - started) / args.requests * 1e6)
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
    return min(figures)


async def gateway_batch(args: argparse.Namespace, work: harness.Workdir) -> tuple[Batch, Any]:
    env, token = harness.identity(work)
    os.environ.update(env)
    os.environ["GATEWAY_ACCESS_LOG"] = str(work.path / "access.log")
    credential = ""
    if args.route in ("jwt", "any"):  # `any`: an access token, after the key and PAT kinds
        credential = f"Authorization: Bearer {token}\r\n"
    elif args.route == "api_key":
        credential = f"X-API-Key: {harness.tenant_key(env)}\r\n"

    from auth_core.service import AuthCore
    from gateway.config import Settings
    from gateway.http.server import HttpServer, Limits
    from gateway.proxy.connection import UpstreamConnection
    from gateway.routing.loader import parse_route_table
    from gateway.server.app import Gateway

    settings = Settings.from_env()
    table = parse_route_table(harness.gateway_routes(9, args.route))
    core = AuthCore(settings.auth)
    await core.start()
    gateway = Gateway(settings, table, core=core)
    loop = asyncio.get_running_loop()
    server = HttpServer(gateway.handle, Limits(), loop)
    answers: deque[Any] = deque()
    for group in gateway.pools.groups.values():
        for pool in group.pools:
            for _ in range(CONNECTIONS * 2):
                upstream = UpstreamConnection(loop, gateway.pools.watchdog)
                upstream.connection_made(UpstreamTransport(upstream, answers))  # type: ignore[arg-type]
                pool.idle.append(upstream)
    clients = []
    for _ in range(CONNECTIONS):
        client = server()
        client.connection_made(CountingTransport())  # type: ignore[arg-type]
        clients.append(client)
    request = f"GET /bench HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n{credential}\r\n"

    async def close() -> None:
        await gateway.close()
        await core.close()

    return Batch(clients, request.encode(), answers), close


def floor_batch() -> Batch:
    proxy = floor.Proxy(harness.LOOPBACK, 9)
    answers: deque[Any] = deque()
    for _ in range(CONNECTIONS * 2):
        upstream = floor.Upstream(proxy.idle)
        upstream.connection_made(UpstreamTransport(upstream, answers))  # type: ignore[arg-type]
        proxy.idle.append(upstream)
    clients = []
    for _ in range(CONNECTIONS):
        client = floor.Client(proxy)
        client.connection_made(CountingTransport())  # type: ignore[arg-type]
        clients.append(client)
    request = b"GET /bench HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"
    return Batch(clients, request, answers)


async def main(args: argparse.Namespace) -> None:
    work = harness.Workdir()
    try:
        batch, close = await gateway_batch(args, work)
        try:
            await warm_up(batch)
            micros = await timed(batch, args)
        finally:
            await close()
        build = "compiled" if compiled() else "pure Python"
        print(
            f"gateway ({build}), auth: {args.route}: {micros:.2f} us of CPU a request "
            f"({batch.statuses()})"
        )
        if not args.profile and not args.gateway_only:
            floor_load = floor_batch()
            micros = await timed(floor_load, args)
            print(f"bench/floor.py: {micros:.2f} us of CPU a request ({floor_load.statuses()})")
    finally:
        work.cleanup()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--route", choices=("none", "jwt", "api_key", "any"), default="jwt")
    parser.add_argument("--requests", type=int, default=4000, help="requests a timed batch")
    parser.add_argument("--repeats", type=int, default=60, help="timed batches")
    parser.add_argument(
        "--profile", type=int, default=0, help="profile (cProfile) and print this many rows"
    )
    parser.add_argument("--gateway-only", action="store_true", help="skip bench/floor.py's figure")
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="measure the mypyc build (scripts/build-compiled, .venv-compiled)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.compiled and not compiled():
        # Build when the sources changed, then run again under the build's interpreter.
        harness.use_compiled_build()
        os.execv(harness.GATEWAY_PYTHON, [harness.GATEWAY_PYTHON, __file__, *sys.argv[1:]])  # noqa: S606
    uvloop.run(main(arguments))
