"""Throughput and latency of the gateway beside nginx, on one machine, in one run.

See bench/README.md for what is measured and why it is set up this way. Run it with
`bench/run` (which makes the virtualenv first); `bench/run --help` lists the knobs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOOPBACK = "127.0.0.1"
UPSTREAM_BODY = '{"ok":true,"service":"upstream","items":[1,2,3]}'
# The interpreter that runs the gateways: this one, or .venv-compiled's with --compiled.
GATEWAY_PYTHON = sys.executable
COMPILED_VENV = ROOT / ".venv-compiled"


# -- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_http(port: int, path: str = "/", timeout: float = 20.0, *, tls: bool = False) -> None:
    deadline = time.monotonic() + timeout
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the run's own throwaway certificate
    while time.monotonic() < deadline:
        request = f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode()
        with (
            contextlib.suppress(OSError),
            socket.create_connection((LOOPBACK, port), timeout=1) as raw,
            context.wrap_socket(raw) if tls else raw as sock,
        ):
            sock.sendall(request)
            if sock.recv(16).startswith(b"HTTP/1."):
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered on port {port}")


def pinned(cpus: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *argv]


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (nginx masters and workers, gateway supervisors)."""
    pids = [pid]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True
        ).stdout
        children: dict[int, list[int]] = {}
        for line in out.splitlines():
            child, parent = (int(x) for x in line.split())
            children.setdefault(parent, []).append(child)
        index = 0
        while index < len(pids):
            pids.extend(children.get(pids[index], []))
            index += 1
    return pids


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Workdir:
    """Config files, logs and pid files of one run."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="gateway-bench-"))

    def file(self, name: str, text: str) -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


def start_nginx(
    work: Workdir, name: str, cpus: str, server_block: str, *, tls: bool = False
) -> Service:
    port = free_port()
    prefix = work.path / name
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    block = textwrap.indent(server_block.replace("{port}", str(port)), "  ")
    conf = work.file(
        f"{name}/nginx.conf",
        textwrap.dedent(
            f"""\
            worker_processes 1;
            daemon off;
            pid {prefix}/nginx.pid;
            error_log {prefix}/logs/error.log warn;
            events {{ worker_connections 8192; }}
            http {{
              access_log off;
              keepalive_requests 10000000;
              keepalive_timeout 120s;
            {block}
            }}
            """
        ),
    )
    binary = nginx_binary()
    assert binary is not None
    process = subprocess.Popen(
        pinned(cpus, [binary, "-c", str(conf), "-p", str(prefix)]),
        stdout=subprocess.DEVNULL,
        stderr=(prefix / "logs" / "stderr.log").open("wb"),
    )
    wait_http(port, tls=tls)
    return Service(name, process, port)


def start_upstream(work: Workdir, cpus: str) -> Service:
    return start_nginx(
        work,
        "upstream",
        cpus,
        f"""server {{
  listen {LOOPBACK}:{{port}};
  location / {{ default_type application/json; return 200 '{UPSTREAM_BODY}'; }}
}}""",
    )


def start_nginx_proxy(work: Workdir, cpus: str, upstream_port: int) -> Service:
    return start_nginx(
        work,
        "nginx-proxy",
        cpus,
        f"""upstream backend {{ server {LOOPBACK}:{upstream_port}; keepalive 64; }}
server {{
  listen {LOOPBACK}:{{port}};
  location / {{
    proxy_pass http://backend;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
  }}
}}""",
    )


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )


def start_haproxy_jwt(work: Workdir, cpus: str, upstream_port: int, jwt_secret: str) -> Service:
    """HAProxy checking the gateway's HS256 access tokens itself (`jwt_verify`, HAProxy 2.5+:
    signature, algorithm and expiry), then proxying over kept-alive connections: what a C proxy
    does with the same authentication in process, the yardstick of the native relay's goal."""
    binary = haproxy_binary()
    assert binary is not None
    port = free_port()
    kid, _, secret = jwt_secret.partition(":")
    verified = f'var(txn.bearer),jwt_verify(txn.alg,"{secret}")'  # 1: the signature holds
    conf = work.file(
        "haproxy-jwt/haproxy.cfg",
        textwrap.dedent(
            f"""            global
              nbthread 1
              maxconn 4096
            defaults
              mode http
              timeout connect 5s
              timeout client 60s
              timeout server 60s
            frontend bench
              bind {LOOPBACK}:{port}
              http-request set-var(txn.bearer) http_auth_bearer
              http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
              http-request set-var(txn.kid) var(txn.bearer),jwt_header_query('$.kid')
              http-request deny status 401 unless {{ var(txn.alg) -m str HS256 }}
              http-request deny status 401 unless {{ var(txn.kid) -m str {kid} }}
              http-request deny status 401 unless {{ {verified} -m int 1 }}
              http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
              http-request set-var(txn.now) date()
              http-request deny status 401 if {{ var(txn.exp),sub(txn.now) -m int le 0 }}
              default_backend upstream
            backend upstream
              http-reuse always
              server up {LOOPBACK}:{upstream_port}
            """
        ),
    )
    process = subprocess.Popen(
        pinned(cpus, [binary, "-f", str(conf)]),
        stdout=subprocess.DEVNULL,
        stderr=(work.path / "haproxy-jwt" / "stderr.log").open("wb"),
    )
    wait_http(port)
    return Service("haproxy-jwt", process, port)


def start_floor(work: Workdir, cpus: str, upstream_port: int) -> Service:
    """bench/floor.py: the least a Python proxy of this design can do (no features)."""
    port = free_port()
    process = subprocess.Popen(
        pinned(
            cpus,
            [
                sys.executable,
                str(Path(__file__).with_name("floor.py")),
                "--port",
                str(port),
                "--upstream",
                f"{LOOPBACK}:{upstream_port}",
            ],
        ),
        stdout=subprocess.DEVNULL,
        stderr=(work.path / "floor.stderr.log").open("wb"),
    )
    wait_http(port, "/bench")
    return Service("floor", process, port)


def start_gateway(
    work: Workdir,
    name: str,
    cpus: str,
    routes_yaml: str,
    workers: int,
    env: dict[str, str],
    python: str | None = None,
    *,
    tls: bool = False,
) -> Service:
    """A gateway of this checkout, or of another one's interpreter (`python`, --baseline)."""
    port = free_port()
    config = work.file(f"{name}/routes.yaml", routes_yaml)
    log_dir = work.path / name
    environment = {
        **os.environ,
        "GATEWAY_ACCESS_LOG": str(log_dir / "access.log"),
        "GATEWAY_LOG_LEVEL": "warning",
        # Every load generator here is one address (loopback) opening many connections on
        # purpose (bench/websocket.py holds 10,000): the per-address limit would refuse them.
        "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "0",
        **env,
    }
    process = subprocess.Popen(
        pinned(
            cpus,
            [
                python or GATEWAY_PYTHON,
                "-m",
                "gateway",
                "serve",
                "--config",
                str(config),
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
        ),
        stdout=subprocess.DEVNULL,
        stderr=(log_dir / "stderr.log").open("wb"),
        env=environment,
        cwd=work.path,
    )
    wait_http(port, "/health", tls=tls)
    return Service(name, process, port)


# -- load ----------------------------------------------------------------------------------------


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if match is None:
        raise ValueError(f"unreadable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    cpus: str,
    url: str,
    *,
    connections: int,
    seconds: int,
    script: Path | None = None,
    headers: dict[str, str] | None = None,
) -> Load:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run(
        pinned(cpus, [*argv, url]), capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    for pattern in (
        r"Non-2xx or 3xx responses: (\d+)",
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
    ):
        match = re.search(pattern, out)
        if match:
            errors += sum(int(x) for x in match.groups())
    return Load(rps, p50, p99, total, errors)


def rate_script(work: Workdir, rate: float, connections: int) -> Path:
    # wrk has no fixed-rate mode: each connection waits between its requests so that all of
    # them together send about `rate` requests a second (closed loop; the latency of each
    # request is measured without the wait).
    delay_ms = max(0.0, 1000.0 * connections / rate)
    return work.file(
        "rate.lua",
        f"function delay()\n  return {delay_ms:.3f}\nend\n",
    )


# -- contenders ----------------------------------------------------------------------------------


@dataclass
class Contender:
    key: str
    title: str
    path: str = "/bench"
    headers: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None
    start: Callable[[], list[Service]] | None = None


@dataclass
class Row:
    key: str
    title: str
    runs: list[Load] = field(default_factory=list)
    skipped: str | None = None
    hit_rates: list[float | None] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)


def cache_hit_rate(port: int) -> float | None:
    """The gateway's auth cache hit rate after the run, from gateway_auth_cache_lookups_total:
    answers from a worker's own cache or the shared one over all look-ups of the own one
    (None: no look-ups were made)."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    counts: dict[str, float] = {"hit": 0.0, "miss": 0.0, "shared_hit": 0.0}
    for line in answer.decode("utf-8", "replace").splitlines():
        if line.startswith("gateway_auth_cache_lookups_total{"):
            labels, value = line.rsplit(" ", 1)
            for result in counts:
                if f'result="{result}"' in labels:
                    counts[result] += float(value)
    total = counts["hit"] + counts["miss"]
    return (counts["hit"] + counts["shared_hit"]) / total if total else None


def gateway_routes(upstream_port: int, auth: str) -> str:
    return textwrap.dedent(
        f"""\
        version: 1
        upstreams:
          backend:
            targets: ["http://{LOOPBACK}:{upstream_port}"]
        routes:
          - {{name: bench, path: /bench, upstream: backend, auth: {auth}}}
          - {{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}}
        """
    )


def supported_auth_kinds() -> set[str]:
    sys.path.insert(0, str(ROOT))
    from gateway.routing.table import SUPPORTED_AUTH_KINDS

    return {kind.value for kind in SUPPORTED_AUTH_KINDS}


BENCH_EMAIL = "bench@example.com"


def admin_command(args: list[str], env: dict[str, str], stdin: str = "") -> str:
    """Run a `gateway` administration command on the run's database; its stdout."""
    done = subprocess.run(
        [GATEWAY_PYTHON, "-m", "gateway", *args],
        input=stdin,
        text=True,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        cwd=tempfile.gettempdir(),  # not the checkout, whose sources would shadow a build
    )
    return done.stdout


def tenant_key(env: dict[str, str]) -> str:
    """An API key of a tenant whose IP whitelist, like a real one, holds several blocks (the
    loopback block the load comes from among them)."""
    tenant = json.loads(
        admin_command(
            [
                "tenant",
                "create",
                "bench",
                *("--allow-ip", "10.0.0.0/8", "--allow-ip", "192.0.2.0/24"),
                *("--allow-ip", "2001:db8::/32", "--allow-ip", "127.0.0.0/8", "--json"),
            ],
            env,
        )
    )
    key = json.loads(admin_command(["key", "create", "--tenant", tenant["id"], "--json"], env))
    return str(key["key"])


def identity(work: Workdir) -> tuple[dict[str, str], str]:
    """The environment every gateway of the run shares (one database, fixed secrets) and an
    access token for a user of it, valid for the whole run."""
    import secrets as random_secrets

    env = {
        "GATEWAY_DATABASE_URL": f"sqlite:///{work.path}/bench.db",
        "GATEWAY_JWT_SECRET": f"b1:{random_secrets.token_urlsafe(40)}",
        "GATEWAY_SERVICE_SECRET": f"s1:{random_secrets.token_urlsafe(40)}",
        "GATEWAY_ACCESS_TOKEN_TTL": "12h",
        "GATEWAY_MAIL_URL": f"outbox:{work.path}/outbox",
    }
    environment = {**os.environ, **env}
    password = random_secrets.token_urlsafe(16)
    subprocess.run(
        [
            GATEWAY_PYTHON,
            "-m",
            "gateway",
            "user",
            "create",
            "--email",
            BENCH_EMAIL,
            "--password-stdin",
        ],
        input=password + "\n",
        text=True,
        env=environment,
        check=True,
        capture_output=True,
        cwd=work.path,
    )
    service = start_gateway(
        work, "gateway-login", f"0-{(os.cpu_count() or 1) - 1}", gateway_routes(1, "none"), 1, env
    )
    try:
        request = json.dumps({"email": BENCH_EMAIL, "password": password}).encode()
        with socket.create_connection((LOOPBACK, service.port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: b\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
                % (len(request), request)
            )
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        token = json.loads(answer.split(b"\r\n\r\n", 1)[1])["access_token"]
    finally:
        service.stop()
    return env, str(token)


def start_forward_auth_architecture(
    work: Workdir, cpus: str, upstream_port: int, env: dict[str, str]
) -> list[Service]:
    """nginx `auth_request` asking a separate gateway process, then proxying: the usual "proxy
    calls an auth service" set-up (Traefik forwardAuth, nginx auth_request)."""
    auth = start_gateway(
        work, "forward-auth-gateway", cpus, gateway_routes(upstream_port, "none"), 1, env
    )
    copied = ("x_auth_method", "x_user_id", "x_user_roles", "x_gateway_signature")
    sets = "\n    ".join(f"auth_request_set ${name} $upstream_http_{name};" for name in copied)
    forwards = "\n    ".join(
        f"proxy_set_header {name.replace('_', '-')} ${name};" for name in copied
    )
    proxy = start_nginx(
        work,
        "forward-auth-nginx",
        cpus,
        f"""upstream backend {{ server {LOOPBACK}:{upstream_port}; keepalive 64; }}
upstream authsvc {{ server {LOOPBACK}:{auth.port}; keepalive 64; }}
server {{
  listen {LOOPBACK}:{{port}};
  location / {{
    auth_request /_validate;
    {sets}
    {forwards}
    proxy_pass http://backend;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
  }}
  location = /_validate {{
    internal;
    proxy_pass http://authsvc/api/v1/auth/validate;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_pass_request_body off;
    proxy_set_header Content-Length "";
    proxy_set_header X-Forwarded-Method $request_method;
    proxy_set_header X-Forwarded-Uri $request_uri;
  }}
}}""",
    )
    return [proxy, auth]


def contenders(args: argparse.Namespace, work: Workdir, upstream: Service) -> list[Contender]:
    cpus = args.contender_cpus
    kinds = supported_auth_kinds()
    env, token = identity(work)
    bearer = {"Authorization": f"Bearer {token}"}

    def gateway(name: str, auth: str, python: str | None = None) -> Callable[[], list[Service]]:
        routes = gateway_routes(upstream.port, auth)
        return lambda: [start_gateway(work, name, cpus, routes, args.workers, env, python)]

    items = [
        Contender("upstream", "1. upstream directly (ceiling)", start=lambda: []),
        Contender(
            "nginx",
            "2. nginx reverse proxy, no auth",
            start=lambda: [start_nginx_proxy(work, cpus, upstream.port)],
        ),
        Contender(
            "forward-auth",
            "3. nginx auth_request + gateway forwardAuth (a separate auth service)",
            headers=bearer,
            start=lambda: start_forward_auth_architecture(work, cpus, upstream.port, env),
        ),
        Contender("gateway-none", "4. gateway, auth: none", start=gateway("gateway-none", "none")),
    ]
    if haproxy_binary() is not None:
        items.insert(
            2,
            Contender(
                "haproxy-jwt",
                "2c. HAProxy, jwt_verify in process (the same HS256 tokens), no gateway",
                headers=bearer,
                start=lambda: [
                    start_haproxy_jwt(work, cpus, upstream.port, env["GATEWAY_JWT_SECRET"])
                ],
            ),
        )
    else:
        items.insert(2, Contender("haproxy-jwt", "2c. HAProxy jwt_verify", skipped="no haproxy"))
    if args.floor:
        items.insert(
            2,
            Contender(
                "floor",
                "2b. bare Python proxy, no features (bench/floor.py: the design's floor)",
                start=lambda: [start_floor(work, cpus, upstream.port)],
            ),
        )
    if "jwt" in kinds:
        items.append(
            Contender(
                "gateway-jwt",
                "5a. gateway, auth: jwt",
                headers=bearer,
                start=gateway("gateway-jwt", "jwt"),
            )
        )
    else:
        items.append(
            Contender("gateway-jwt", "5a. gateway, auth: jwt", skipped="auth: jwt not enforced")
        )
    title = "5b. gateway, auth: api_key + IP whitelist"
    # One tenant (tenant names are unique) and one key for every api_key gateway of the run.
    key_headers = {"X-API-Key": tenant_key(env)} if "api_key" in kinds else {}
    if "api_key" in kinds:
        items.append(
            Contender(
                "gateway-api_key",
                title,
                headers=key_headers,
                start=gateway("gateway-api_key", "api_key"),
            )
        )
    else:
        items.append(Contender("gateway-api_key", title, skipped="auth: api_key is not enforced"))
    if args.baseline:
        # The same three gateways from another checkout, in the same rounds: a before/after of
        # a change as ratios of one run (absolute figures differ between runs and machines).
        python = baseline_python(args)
        for auth, headers in (
            ("none", {}),
            ("jwt", bearer),
            ("api_key", key_headers),
        ):
            name = f"base-{auth}"
            items.append(
                Contender(
                    name,
                    f"6. baseline ({args.baseline}), auth: {auth}",
                    headers=headers,
                    start=gateway(name, auth, python),
                )
            )
    if args.only:
        keep = set(args.only.split(","))
        items = [item for item in items if item.key in keep or item.key == "upstream"]
    return items


def baseline_python(args: argparse.Namespace) -> str:
    """The interpreter of the --baseline checkout: its .venv, or its .venv-compiled."""
    venv = ".venv-compiled" if args.compiled else ".venv"
    python = Path(args.baseline).resolve() / venv / "bin" / "python"
    if not python.exists():
        build = "scripts/build-compiled .venv-compiled" if args.compiled else "bench/run --quick"
        raise SystemExit(f"bench: {python} is missing; in {args.baseline} run {build} first")
    return str(python)


# -- the run -------------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, object]:
    work = Workdir()
    services: list[Service] = []
    try:
        upstream = start_upstream(work, args.upstream_cpus or args.contender_cpus)
        services.append(upstream)
        items = [] if args.tls_only else contenders(args, work, upstream)
        rows = {item.key: Row(item.key, item.title, skipped=item.skipped) for item in items}
        live = [item for item in items if item.skipped is None]
        for round_index in range(args.rounds if live else 0):
            # Interleave: each round starts with a different contender.
            order = live[round_index % len(live) :] + live[: round_index % len(live)]
            for item in order:
                assert item.start is not None
                started = item.start()
                port = started[0].port if started else upstream.port
                url = f"http://{LOOPBACK}:{port}{item.path}"
                try:
                    run_wrk(
                        args.load_cpus,
                        url,
                        connections=args.connections,
                        seconds=args.warmup,
                        headers=item.headers,
                    )
                    load = run_wrk(
                        args.load_cpus,
                        url,
                        connections=args.connections,
                        seconds=args.duration,
                        headers=item.headers,
                    )
                    if item.key.startswith(("gateway-", "base-")) and started:
                        rows[item.key].hit_rates.append(cache_hit_rate(started[0].port))
                finally:
                    for service in started:
                        service.stop()
                rows[item.key].runs.append(load)
                print(
                    f"round {round_index + 1}/{args.rounds} {item.key:14s} "
                    f"{load.requests_per_second:10.0f} req/s  p50 {load.p50_ms:.2f} ms  "
                    f"p99 {load.p99_ms:.2f} ms  errors {load.errors}",
                    file=sys.stderr,
                )
        extra: dict[str, object] = {}
        if not args.no_tls:
            extra["tls"] = tls_round(args, work, upstream)
        if args.fixed_rate:
            extra["fixed_rate"] = fixed_rate(args, work, upstream, rows)
        if args.memory_requests:
            extra["memory"] = memory_flatness(args, work, upstream)
        return {"rows": rows, **extra}
    finally:
        for service in services:
            service.stop()
        work.cleanup()


def fixed_rate(
    args: argparse.Namespace, work: Workdir, upstream: Service, rows: dict[str, Row]
) -> dict[str, object]:
    """p99 at half the gateway's measured maximum, direct and through the gateway."""
    maximum = rows["gateway-none"].median("requests_per_second")
    rate = maximum / 2
    script = rate_script(work, rate, args.connections)
    direct = run_wrk(
        args.load_cpus,
        f"http://{LOOPBACK}:{upstream.port}/bench",
        connections=args.connections,
        seconds=args.duration,
        script=script,
    )
    gateway = start_gateway(
        work,
        "gateway-rate",
        args.contender_cpus,
        gateway_routes(upstream.port, "none"),
        args.workers,
        {},
    )
    try:
        url = f"http://{LOOPBACK}:{gateway.port}/bench"
        run_wrk(
            args.load_cpus, url, connections=args.connections, seconds=args.warmup, script=script
        )
        through = run_wrk(
            args.load_cpus, url, connections=args.connections, seconds=args.duration, script=script
        )
    finally:
        gateway.stop()
    return {
        "target_rate": round(rate),
        "direct": asdict(direct),
        "gateway": asdict(through),
        "added_p99_ms": round(through.p99_ms - direct.p99_ms, 3),
    }


def memory_flatness(
    args: argparse.Namespace, work: Workdir, upstream: Service
) -> dict[str, object]:
    """RSS of a gateway worker after warm-up and after `memory_requests` more requests."""
    gateway = start_gateway(
        work, "gateway-memory", args.contender_cpus, gateway_routes(upstream.port, "none"), 1, {}
    )
    try:
        url = f"http://{LOOPBACK}:{gateway.port}/bench"
        run_wrk(args.load_cpus, url, connections=args.connections, seconds=args.warmup)
        pid = process_tree(gateway.process.pid)[-1]
        before = rss_kib(pid)
        samples = [before]
        done = 0
        while done < args.memory_requests:
            load = run_wrk(args.load_cpus, url, connections=args.connections, seconds=10)
            done += load.requests
            samples.append(rss_kib(pid))
        return {
            "requests": done,
            "rss_kib_after_warmup": before,
            "rss_kib_samples": samples,
            "rss_kib_growth": samples[-1] - before,
        }
    finally:
        gateway.stop()


# -- TLS termination ---------------------------------------------------------------------------

# Mozilla's "intermediate" TLS 1.2 suites, as the gateway has them (gateway/tls/policy.py).
TLS_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
TLS_LOADS: dict[str, dict[str, str]] = {
    "keep-alive": {},
    # wrk opens a new connection when the server closes one; it offers the session it had, so
    # each is a resumed TLS 1.2 handshake (a session ticket), as a returning browser's is.
    "new connection (resumed)": {"Connection": "close"},
}
FULL_HANDSHAKES = "full handshake (s_time)"


def run_s_time(cpus: str, port: int, seconds: int) -> Load:
    """Full TLS 1.3 handshakes a second, one after another, no request (`openssl s_time
    -new`): what a first visit costs the server, latency-bound (one client connection)."""
    started = time.monotonic()
    out = subprocess.run(
        pinned(
            cpus,
            [
                *("openssl", "s_time", "-connect", f"{LOOPBACK}:{port}"),
                *("-new", "-time", str(seconds)),
            ],
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    elapsed = time.monotonic() - started
    count = int(re.search(r"(\d+) connections in [\d.]+s", out).group(1))  # type: ignore[union-attr]
    return Load(count / elapsed, 0.0, 0.0, count, 0)


def make_certificate(work: Workdir) -> tuple[Path, Path]:
    """A throwaway ECDSA P-256 certificate for localhost (what certbot issues by default)."""
    cert, key = work.path / "tls.crt", work.path / "tls.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def start_nginx_tls(work: Workdir, cpus: str, upstream_port: int, cert: Path, key: Path) -> Service:
    return start_nginx(
        work,
        "nginx-tls",
        cpus,
        f"""upstream backend {{ server {LOOPBACK}:{upstream_port}; keepalive 64; }}
server {{
  listen {LOOPBACK}:{{port}} ssl;
  ssl_certificate {cert};
  ssl_certificate_key {key};
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ciphers {TLS_CIPHERS};
  ssl_prefer_server_ciphers off;
  location / {{
    proxy_pass http://backend;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
  }}
}}""",
        tls=True,
    )


def tls_round(
    args: argparse.Namespace, work: Workdir, upstream: Service
) -> dict[str, dict[str, Row]]:
    """nginx and the gateway terminating TLS (same certificate, suites and CPU), under a
    keep-alive load and a new-connection load; rows by load, then contender."""
    cpus = args.contender_cpus
    cert_file, key_file = make_certificate(work)
    env = {"GATEWAY_TLS_CERT_FILE": str(cert_file), "GATEWAY_TLS_KEY_FILE": str(key_file)}
    starts: dict[str, tuple[str, Callable[[], Service]]] = {
        "nginx-tls": (
            "nginx terminating TLS, proxying",
            lambda: start_nginx_tls(work, cpus, upstream.port, cert_file, key_file),
        ),
        "gateway-tls": (
            "gateway terminating TLS, auth: none",
            lambda: start_gateway(
                work,
                "gateway-tls",
                cpus,
                gateway_routes(upstream.port, "none"),
                args.workers,
                env,
                tls=True,
            ),
        ),
    }
    rows = {
        load: {key: Row(key, title) for key, (title, _) in starts.items()}
        for load in [*TLS_LOADS, FULL_HANDSHAKES]
    }
    keys = list(starts)
    for round_index in range(args.rounds):
        order = keys[round_index % len(keys) :] + keys[: round_index % len(keys)]
        for key in order:
            service = starts[key][1]()
            try:
                for load, headers in TLS_LOADS.items():
                    url = f"https://{LOOPBACK}:{service.port}/bench"
                    run_wrk(
                        args.load_cpus,
                        url,
                        connections=args.connections,
                        seconds=args.warmup,
                        headers=headers,
                    )
                    result = run_wrk(
                        args.load_cpus,
                        url,
                        connections=args.connections,
                        seconds=args.duration,
                        headers=headers,
                    )
                    rows[load][key].runs.append(result)
                    print(
                        f"round {round_index + 1}/{args.rounds} {key:12s} {load:26s} "
                        f"{result.requests_per_second:10.0f} req/s  p50 {result.p50_ms:.2f} ms  "
                        f"p99 {result.p99_ms:.2f} ms  errors {result.errors}",
                        file=sys.stderr,
                    )
                full = run_s_time(args.load_cpus, service.port, args.duration)
                rows[FULL_HANDSHAKES][key].runs.append(full)
                print(
                    f"round {round_index + 1}/{args.rounds} {key:12s} {FULL_HANDSHAKES:26s} "
                    f"{full.requests_per_second:10.0f} handshakes/s",
                    file=sys.stderr,
                )
            finally:
                service.stop()
    return rows


def tls_table(rows: dict[str, dict[str, Row]]) -> str:
    lines = [
        "| load | contender | req/s (median) | p50 ms | p99 ms | vs nginx TLS | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for load, by_key in rows.items():
        nginx = by_key["nginx-tls"].median("requests_per_second")
        for row in by_key.values():
            rps = row.median("requests_per_second")
            errors = sum(run.errors for run in row.runs)
            p50, p99 = row.median("p50_ms"), row.median("p99_ms")
            latency = f"{p50:.2f} | {p99:.2f}" if p99 else "- | -"
            lines.append(
                f"| {load} | {row.title} | {rps:,.0f} | {latency} | {rps / nginx:.2f}x | {errors} |"
            )
    return "\n".join(lines)


# -- output --------------------------------------------------------------------------------------


def table(rows: dict[str, Row]) -> str:
    nginx = rows.get("nginx")
    forward_auth = rows.get("forward-auth")
    base_nginx = nginx.median("requests_per_second") if nginx and nginx.runs else None
    base_forward_auth = (
        forward_auth.median("requests_per_second") if forward_auth and forward_auth.runs else None
    )
    haproxy = rows.get("haproxy-jwt")
    base_haproxy = haproxy.median("requests_per_second") if haproxy and haproxy.runs else None
    lines = [
        "| contender | req/s (median) | p50 ms | p99 ms | vs nginx proxy | vs forwardAuth "
        "| vs HAProxy jwt_verify | auth cache hit rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows.values():
        if row.skipped:
            lines.append(f"| {row.title} | skipped: {row.skipped} | | | | | | |")
            continue
        rates = [rate for rate in row.hit_rates if rate is not None]
        hit_rate = f"{min(rates):.4%}" if rates else "-"
        rps = row.median("requests_per_second")
        vs_nginx = f"{rps / base_nginx:.2f}x" if base_nginx else "-"
        vs_forward_auth = f"{rps / base_forward_auth:.2f}x" if base_forward_auth else "-"
        vs_haproxy = f"{rps / base_haproxy:.2f}x" if base_haproxy else "-"
        lines.append(
            f"| {row.title} | {rps:,.0f} | {row.median('p50_ms'):.2f} | "
            f"{row.median('p99_ms'):.2f} | {vs_nginx} | {vs_forward_auth} | {vs_haproxy} "
            f"| {hit_rate} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    # Whole seconds: wrk refuses a fraction (-d5.0s).
    parser.add_argument("--duration", type=int, default=10, help="seconds a measurement")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up a start")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--load-cpus", default="0", help="CPUs of the load generator, wrk (default 0)"
    )
    parser.add_argument(
        "--contender-cpus",
        default="1" if cpus > 1 else "0",
        help="CPUs of the contender, all its processes together (default 1)",
    )
    parser.add_argument(
        "--upstream-cpus",
        default=None,
        help="CPUs of the upstream nginx (default: the contender's, see bench/README.md)",
    )
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument(
        "--fixed-rate", action="store_true", help="also p99 at half the gateway's maximum"
    )
    parser.add_argument(
        "--memory-requests",
        type=int,
        default=0,
        help="also RSS of a worker across this many requests (e.g. 1000000)",
    )
    parser.add_argument(
        "--floor", action="store_true", help="also bench/floor.py, a proxy with no features"
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="run the gateways from the mypyc build (scripts/build-compiled, .venv-compiled)",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run the gateways of another checkout (before/after a change, in one run)",
    )
    parser.add_argument(
        "--only",
        metavar="KEYS",
        help="only these contenders, comma-separated (e.g. gateway-jwt,base-jwt)",
    )
    parser.add_argument(
        "--no-tls", action="store_true", help="skip the TLS round (nginx and the gateway on TLS)"
    )
    parser.add_argument("--tls-only", action="store_true", help="only the TLS round")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3, 1
    return args


def use_compiled_build() -> None:
    """Build (when the sources changed) and use the mypyc-compiled gateway for every gateway
    process of the run, the forwardAuth contender's included."""
    global GATEWAY_PYTHON
    subprocess.run([str(ROOT / "scripts" / "build-compiled"), str(COMPILED_VENV)], check=True)
    GATEWAY_PYTHON = str(COMPILED_VENV / "bin" / "python")


def main(argv: list[str] | None = None) -> int:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if nginx_binary() is None:
        missing.append("nginx")
    if missing:
        print(
            f"bench: missing {', '.join(missing)}; on Debian/Ubuntu: "
            "sudo apt-get install nginx wrk util-linux",
            file=sys.stderr,
        )
        return 2
    args = parse_args(argv)
    if args.compiled:
        use_compiled_build()
    started = dt.datetime.now(dt.UTC)
    result = measure(args)
    rows: dict[str, Row] = result.pop("rows")  # type: ignore[assignment]
    tls_rows: dict[str, dict[str, Row]] | None = result.pop("tls", None)  # type: ignore[assignment]
    markdown = table(rows) if rows else ""
    if tls_rows is not None:
        markdown = (markdown + "\n\nTLS termination:\n\n" + tls_table(tls_rows)).strip()
    print(markdown)
    for key, value in result.items():
        print(f"\n{key}: {json.dumps(value)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    document = {
        "started": started.isoformat(),
        "machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname())},
        "settings": dict(vars(args)),
        "contenders": {
            key: {
                "title": row.title,
                "skipped": row.skipped,
                "runs": [asdict(r) for r in row.runs],
                "hit_rates": row.hit_rates,
            }
            for key, row in rows.items()
        },
        "tls": {
            load: {
                key: {"title": row.title, "runs": [asdict(r) for r in row.runs]}
                for key, row in by_key.items()
            }
            for load, by_key in (tls_rows or {}).items()
        },
        "table": markdown,
        **result,
    }
    (RESULTS / f"{stamp}.json").write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / f"{stamp}.md").write_text(markdown + "\n")
    print(f"\nsaved bench/results/{stamp}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
