"""deploy/compose.yaml's processes for real: the same commands with the same environment, on
loopback ports (deploy/run_local.py says how a container network is stood in for), in the
compose file's start order; then requests through its load balancer (the machine's HAProxy
with the mounted haproxy.cfg) to both gateway replicas and on to the sample upstream. Last,
deploy/run_local.py's own command line, as docs/operations/deploy.md has a user run it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import yaml

from deploy.run_local import ComposeRun
from gateway.context import parse_keys, verify
from tests.conftest import POSTGRES_ADMIN_DSN
from tests.support import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
REPLICAS = ("gateway-1", "gateway-2")
REQUESTS = 8  # through the load balancer, round robin over two replicas
CLIENT = "127.0.0.2"  # the tenant's backend: a loopback address other than HAProxy's
OTHER = "127.0.0.3"  # anyone else


def required(binary: str) -> str:
    """A binary of the machine, or a skip (a failure under CI: .ci/run installs it)."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if found is None:
        message = f"{binary} is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def admin(statement: str) -> None:
    async def execute() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(execute())


@pytest.fixture
def fresh_database() -> Iterator[str]:
    name = f"gateway_deploy_{secrets.token_hex(6)}"
    try:
        admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    yield name
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    """deploy/ copied, with its secrets made by deploy/make-secrets as the docs say (and the
    Dockerfile beside it, where the compose file's build context finds it)."""
    copy = tmp_path / "deploy"
    shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("secrets", ".local", "__pycache__"))
    made = subprocess.run(
        ["sh", str(copy / "make-secrets")], capture_output=True, text=True, timeout=30
    )
    assert made.returncode == 0, made.stderr
    return copy


@pytest.fixture
def compose_run(deploy_copy: Path, fresh_database: str) -> Iterator[ComposeRun]:
    for binary in ("haproxy", "pg_isready", "redis-cli"):
        required(binary)
    compose = yaml.safe_load((deploy_copy / "compose.yaml").read_text())
    run = ComposeRun(
        compose,
        deploy_copy,
        ROOT / "Dockerfile",
        f"postgresql://postgres@{LOOPBACK}:5432/{fresh_database}",
        f"gwdeploy:{os.getpid()}:{secrets.token_hex(4)}:",
    )
    try:
        run.up()
        yield run
    finally:
        run.stop()


def fetch(
    url: str, headers: dict[str, str] | None = None, *, source: str = LOOPBACK
) -> tuple[int, dict[str, Any]]:
    """GET an http://127.0.0.1 URL of the set-up from the address `source`: status and JSON."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        LOOPBACK, parts.port, timeout=10, source_address=(source, 0)
    )
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", target, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def access_lines(run: ComposeRun, replica: str) -> list[dict[str, Any]]:
    """The replica's access log lines (JSON on stdout, beside its other log lines)."""
    found = []
    for line in run.processes[replica].output().splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:  # the last line, still being written
            continue
        if "path" in record and "status" in record:
            found.append(record)
    return found


def test_make_secrets_writes_env_files_only_their_owner_reads(deploy_copy: Path) -> None:
    gateway = (deploy_copy / "secrets" / "gateway.env").read_text()
    postgres = (deploy_copy / "secrets" / "postgres.env").read_text()
    [password] = [line.split("=", 1)[1] for line in postgres.splitlines()]
    assert len(password) == 48
    assert f"GATEWAY_DATABASE_URL=postgresql://gateway:{password}@postgres:5432/gateway" in gateway
    for name in ("GATEWAY_JWT_SECRET", "GATEWAY_SERVICE_SECRET"):
        [value] = [line for line in gateway.splitlines() if line.startswith(name + "=k1:")]
        assert len(value.split(":", 1)[1]) == 64
    for path in (deploy_copy / "secrets").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    again = subprocess.run(
        ["sh", str(deploy_copy / "make-secrets")], capture_output=True, text=True, timeout=30
    )
    assert again.returncode == 1
    assert "already holds secrets" in again.stderr
    assert (deploy_copy / "secrets" / "gateway.env").read_text() == gateway


@pytest.mark.timeout(180)
def test_the_compose_set_up_serves_through_its_load_balancer(compose_run: ComposeRun) -> None:
    run = compose_run
    lb = f"http://{LOOPBACK}:{run.port('lb', 8080)}"

    # Health: each replica's /live and /ready, and /ready through the load balancer.
    for replica in REPLICAS:
        base = f"http://{LOOPBACK}:{run.port(replica, 8080)}"
        assert fetch(base + "/live") == (200, {"status": "ok"})
        status, body = fetch(base + "/ready")
        assert (status, body["status"]) == (200, "ready"), body
        assert set(body["checks"].values()) == {"ok"}, body
    status, body = fetch(lb + "/ready")
    assert (status, body["status"]) == (200, "ready")

    # Both replicas answer through HAProxy, and reach the sample upstream.
    for number in range(REQUESTS):
        status, body = fetch(f"{lb}/echo/round/{number}")
        assert status == 200, body
        assert body["path"] == f"/round/{number}"
    seen: dict[str, set[str]] = {}

    def counted() -> bool:
        for replica in REPLICAS:
            paths = {line["path"] for line in access_lines(run, replica)}
            seen[replica] = {path for path in paths if path.startswith("/echo/round/")}
        return sum(len(paths) for paths in seen.values()) == REQUESTS

    deadline = time.monotonic() + 30
    while not counted():  # access logs are flushed within a second
        assert time.monotonic() < deadline, f"access logs: {seen}"
        time.sleep(0.05)
    # Round robin gives each replica every other request (4 and 4 here, every run so far); a
    # replica that a busy machine made miss two health checks in a row would get fewer, so
    # the test asks only that both served.
    assert len(seen["gateway-1"]) >= 1, seen
    assert len(seen["gateway-2"]) >= 1, seen

    # A tenant (its backend at CLIENT) and its API key, made with the CLI in a replica's
    # environment; a signed request with it through the load balancer, verified as the sample
    # upstream would. The replicas believe HAProxy's X-Forwarded-For, and only its last hop:
    # what the client wrote there itself proves nothing.
    tenant = run.cli(
        "gateway-1", "tenant", "create", "acme", "--allow-ip", f"{CLIENT}/32", "--json"
    )
    assert tenant.returncode == 0, tenant.stderr
    tenant_id = json.loads(tenant.stdout)["id"]
    key = run.cli("gateway-1", "key", "create", "--tenant", "acme", "--json")
    assert key.returncode == 0, key.stderr
    secret = json.loads(key.stdout)["key"]
    context_key = run.cli(
        "gateway-2", "context-key", "echo", "--config", "/etc/gateway/routes.yaml"
    )
    assert context_key.returncode == 0, context_key.stderr
    keys = parse_keys(context_key.stdout)
    for number in range(2):  # once through each replica
        status, body = fetch(
            f"{lb}/partner/orders?page={number}",
            {"X-API-Key": secret, "X-Forwarded-For": "203.0.113.9"},
            source=CLIENT,
        )
        assert status == 200, body
        headers = {name.lower(): value for name, value in body["headers"].items()}
        assert headers["x-auth-method"] == "api_key"
        assert headers["x-gateway-signature"].startswith("v2,kid=k1,aud=echo,sig=")
        target = f"{body['path']}?{body['query']}"
        assert target == f"/orders?page={number}"
        context = verify(keys, "echo", body["method"], target, headers)
        assert context.tenant_id == tenant_id
    status, body = fetch(f"{lb}/partner/orders", {"X-API-Key": secret + "x"}, source=CLIENT)
    assert (status, body["error"]) == (401, "invalid_api_key")
    # From another address, claiming to be the tenant's backend: refused.
    status, body = fetch(
        f"{lb}/partner/orders", {"X-API-Key": secret, "X-Forwarded-For": CLIENT}, source=OTHER
    )
    assert (status, body["error"]) == (403, "ip_not_allowed"), body

    # SIGTERM: the replicas drain and exit cleanly.
    codes = run.stop()
    assert codes["gateway-1"] == codes["gateway-2"] == 0, "\n".join(run.logs())


@pytest.mark.timeout(180)
def test_run_local_brings_the_set_up_up_and_runs_the_cli_in_a_replica(
    deploy_copy: Path, fresh_database: str, tmp_path: Path
) -> None:
    """What docs/operations/deploy.md has a user without Docker type: `run_local.py up`, then
    `run_local.py exec gateway-1 ...` for a tenant and a key, a signed request through the load
    balancer, and Ctrl-C (SIGINT) stopping everything with exit status 0, even when started
    the way a shell starts a background job."""
    for binary in ("haproxy", "pg_isready", "redis-cli"):
        required(binary)
    script = [
        sys.executable,
        str(deploy_copy / "run_local.py"),
        "--directory",
        str(tmp_path / "run"),
    ]
    lb = free_port()
    up = subprocess.Popen(
        [
            *script,
            "up",
            "--port",
            str(lb),
            "--postgres",
            POSTGRES_ADMIN_DSN,
            "--database",
            fresh_database,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As a shell starts a background job (`up &`): SIGINT ignored, which Ctrl-C's signal
        # below must still stop.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert up.stdout is not None
        first = up.stdout.readline()  # printed once every service is healthy
        assert first.startswith(f"run-local: up; the load balancer on http://{LOOPBACK}:{lb}"), (
            first + (up.stderr.read() if up.poll() is not None and up.stderr else "")
        )

        def cli(*args: str) -> str:
            done = subprocess.run(
                [*script, "exec", *args], capture_output=True, text=True, timeout=60, check=False
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        tenant_id = json.loads(
            cli("gateway-1", "tenant", "create", "acme", "--allow-ip", f"{CLIENT}/32", "--json")
        )["id"]
        secret = json.loads(cli("gateway-1", "key", "create", "--tenant", "acme", "--json"))["key"]
        keys = parse_keys(
            cli("gateway-2", "context-key", "echo", "--config", "/etc/gateway/routes.yaml")
        )
        status, body = fetch(
            f"http://{LOOPBACK}:{lb}/partner/orders", {"X-API-Key": secret}, source=CLIENT
        )
        assert status == 200, body
        headers = {name.lower(): value for name, value in body["headers"].items()}
        assert verify(keys, "echo", "GET", "/orders", headers).tenant_id == tenant_id
        # The same tenant through the other replica (round robin): one database, one key.
        status, body = fetch(
            f"http://{LOOPBACK}:{lb}/partner/orders", {"X-API-Key": secret}, source=CLIENT
        )
        assert status == 200, body
    finally:
        up.send_signal(signal.SIGINT)
        _, stderr = up.communicate(timeout=90)
    assert up.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert not (tmp_path / "run" / "state.json").exists()  # exec now says nothing runs
    after = subprocess.run(
        [*script, "exec", "gateway-1", "tenant", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert after.returncode == 1
    assert after.stderr.startswith("run-local: nothing runs from"), after.stderr
