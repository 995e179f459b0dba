"""Revocation delay: from the answer to a logout to the first refusal of that session's access
token, at every worker of every gateway (docs/limits.md: within 100 ms,
everywhere).

Two set-ups, each measured over --trials logouts:
- embedded: one gateway, SQLite, --workers workers, no Redis (workers poll the table);
- production: two gateways (replicas) sharing PostgreSQL and Redis, --workers workers each
  (revocations pushed through Redis pub/sub).

Every worker is reached through a kept-alive connection of its own (which worker accepted a
connection is read from /proc), warmed with the token, then polled round-robin right after the
logout's answer. Run: `bench/run-revocation` (or `.venv/bin/python bench/revocation.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

POSTGRES = os.environ.get("GATEWAY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("GATEWAY_BENCH_REDIS", "redis://127.0.0.1:6379/0")
PASSWORD = secrets.token_urlsafe(16)
ROUTES = """\
version: 1
upstreams:
  backend:
    targets: ["http://127.0.0.1:{port}"]
routes:
  - {{name: bench, path: /bench, upstream: backend, auth: jwt}}
  - {{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}}
"""


class Conn:
    """A kept-alive HTTP/1.1 connection (blocking), from a chosen local address."""

    def __init__(self, port: int, source: str = h.LOOPBACK) -> None:
        self.sock = socket.create_connection(
            (h.LOOPBACK, port), timeout=10, source_address=(source, 0)
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = port
        self.buffer = b""

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buffer = rest[length:]
        return status, rest[:length]

    def close(self) -> None:
        self.sock.close()


def serving_pid(port: int, local_port: int, pids: set[int]) -> int | None:
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.rsplit(":", 1)[1], 16) == port
                and int(remote.rsplit(":", 1)[1], 16) == local_port
            ):
                inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        try:
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except OSError:
            continue
        if f"socket:[{inode}]" in links:
            return pid
    return None


def worker_connections(service: h.Service) -> list[Conn]:
    """One connection per worker of the gateway."""
    workers = set(h.process_tree(service.process.pid)) - {service.process.pid} or {
        service.process.pid
    }
    found: dict[int, Conn] = {}
    for _ in range(500):
        conn = Conn(service.port)
        conn.request("GET", "/health", {})
        pid = serving_pid(service.port, conn.sock.getsockname()[1], workers)
        if pid is not None and pid not in found:
            found[pid] = conn
        else:
            conn.close()
        if len(found) == len(workers):
            break
    return list(found.values())


def login(port: int, trial: int) -> str:
    # A different loopback source address every few trials: logins are limited per address.
    conn = Conn(port, f"127.0.0.{10 + trial // 20}")
    body = json.dumps({"email": "bench@example.com", "password": PASSWORD}).encode()
    status, answer = conn.request(
        "POST", "/api/v1/auth/login", {"Content-Type": "application/json"}, body
    )
    conn.close()
    assert status == 200, answer
    return str(json.loads(answer)["access_token"])


def trial(gateways: list[h.Service], probes: list[Conn], number: int) -> list[float]:
    token = login(gateways[0].port, number)
    bearer = {"Authorization": f"Bearer {token}"}
    for conn in probes:
        status, _ = conn.request("GET", "/bench", bearer)
        assert status == 200, status
    status, _ = probes[0].request("POST", "/api/v1/auth/logout", bearer)
    answered = time.perf_counter()
    assert status == 204, status
    delays: list[float | None] = [None] * len(probes)
    while any(delay is None for delay in delays):
        for index, conn in enumerate(probes):
            if delays[index] is None:
                status, _ = conn.request("GET", "/bench", bearer)
                if status == 401:
                    delays[index] = time.perf_counter() - answered
        if time.perf_counter() - answered > 10:
            raise RuntimeError("a worker never refused the revoked token")
    return [delay for delay in delays if delay is not None]


def make_user(env: dict[str, str]) -> None:
    h.admin_command(
        ["user", "create", "--email", "bench@example.com", "--password-stdin"], env, PASSWORD + "\n"
    )


def postgres_database() -> str:
    import asyncpg

    name = f"gateway_bench_{secrets.token_hex(4)}"

    async def create() -> None:
        connection = await asyncpg.connect(POSTGRES)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return POSTGRES.rsplit("/", 1)[0] + "/" + name


def measure(name: str, gateways: list[h.Service], trials: int) -> dict[str, object]:
    probes = [conn for gateway in gateways for conn in worker_connections(gateway)]
    delays: list[float] = []
    for number in range(trials):
        delays += trial(gateways, probes, number)
    for conn in probes:
        conn.close()
    ms = sorted(delay * 1000 for delay in delays)
    result = {
        "setup": name,
        "workers": len(probes),
        "samples": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "max_ms": round(ms[-1], 2),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = h.Workdir()
    results = []
    try:
        upstream = h.start_upstream(work, "0-1")
        routes = ROUTES.format(port=upstream.port)
        common = {
            "GATEWAY_JWT_SECRET": f"b1:{secrets.token_urlsafe(40)}",
            "GATEWAY_SERVICE_SECRET": f"s1:{secrets.token_urlsafe(40)}",
            "GATEWAY_MAIL_URL": f"outbox:{work.path}/outbox",
            "GATEWAY_PASSWORD_HASH_COST": "1,8192,1",
        }
        embedded = {**common, "GATEWAY_DATABASE_URL": f"sqlite:///{work.path}/bench.db"}
        make_user(embedded)
        gateway = h.start_gateway(work, "embedded", "0-1", routes, args.workers, embedded)
        results.append(measure("embedded: SQLite, no Redis, one gateway", [gateway], args.trials))
        gateway.stop()

        production = {
            **common,
            "GATEWAY_DATABASE_URL": postgres_database(),
            "GATEWAY_REDIS_URL": REDIS,
            "GATEWAY_REDIS_PREFIX": f"bench:{secrets.token_hex(4)}:",
        }
        make_user(production)
        replicas = [
            h.start_gateway(work, f"replica-{n}", "0-1", routes, args.workers, production)
            for n in (1, 2)
        ]
        results.append(
            measure("production: PostgreSQL + Redis, two gateways", replicas, args.trials)
        )
        for replica in replicas:
            replica.stop()
        upstream.stop()
    finally:
        work.cleanup()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    h.RESULTS.mkdir(exist_ok=True)
    (h.RESULTS / f"revocation-{stamp}.json").write_text(json.dumps(results, indent=2))
    print(f"saved bench/results/revocation-{stamp}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
