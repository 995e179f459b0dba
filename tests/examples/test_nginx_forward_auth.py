"""examples/nginx/forward-auth.conf on a real nginx: the gateway as nginx's `auth_request`
service (docs/authentication.md, forwardAuth) in front of a real upstream.

client -> nginx -> (auth_request: gateway GET /api/v1/auth/validate) -> echo upstream
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netaddr
import pytest
from aiohttp import ClientSession
from yarl import URL

from auth_core.models import User
from gateway.context import SIGNED, ContextError, derive_keys, verify
from tests.support import (
    FORGED_IDENTITY,
    LOOPBACK,
    RawResponse,
    RunningGateway,
    Upstream,
    cases,
    free_port,
    quiet_settings,
    raw_request,
    running_gateway,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "nginx" / "forward-auth.conf"
SHIPPED_ROUTES = ROOT / "routes.yaml"
NGINX = Path("/usr/sbin/nginx")
START_TIMEOUT = 10.0  # seconds nginx may take to listen
EMAIL = "ann@example.com"
PASSWORD = "correct horse battery staple"
PROBLEM = "application/problem+json"
AUDIENCE = "echo"  # the shipped routes.yaml's upstream: the example's aud=


# -- nginx as a child process ------------------------------------------------------------------


@pytest.fixture
def nginx_binary() -> Path:
    """nginx, or a skip (a failure under CI, which must have it: .ci/run installs it)."""
    found = NGINX if NGINX.is_file() else None
    if found is None:
        which = shutil.which("nginx")
        found = Path(which) if which else None
    if found is None:
        message = f"nginx is not installed ({NGINX})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def render(template: str, **values: str) -> str:
    """The example with its {{PLACEHOLDERS}} filled in; every one must be."""
    text = template
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    assert "{{" not in text, "a placeholder of the example was left unfilled"
    return text


def main_config(directory: Path, server_conf: Path) -> str:
    """A whole nginx.conf of the test's own (pid, logs, temp files in `directory`) that
    includes the example inside `http { }`, as its comments say to."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read tmp_path
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\n{user}worker_processes 1;\n"
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    access_log {directory / 'access.log'};\n"
        f"{temp}\n"
        f"    include {server_conf};\n"
        "}\n"
    )


def nginx_command(binary: Path, directory: Path, *extra: str) -> list[str]:
    return [
        str(binary),
        "-p",
        f"{directory}/",
        "-c",
        str(directory / "nginx.conf"),
        "-e",
        str(directory / "error.log"),
        *extra,
    ]


def error_log(directory: Path) -> str:
    path = directory / "error.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no error log)"


async def wait_listening(process: subprocess.Popen[bytes], port: int, directory: Path) -> None:
    """A bounded poll: nginx accepts on `port`, or the test fails with its error log."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited with {process.returncode}:\n{error_log(directory)}")
        try:
            _, writer = await asyncio.open_connection(LOOPBACK, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        return
    pytest.fail(f"nginx did not listen within {START_TIMEOUT}s:\n{error_log(directory)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (nginx's fast shutdown), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@asynccontextmanager
async def running_nginx(
    binary: Path, directory: Path, *, gateway: int, upstream: int
) -> AsyncIterator[str]:
    """nginx serving the example, rendered with real ports; yields its base URL."""
    directory.mkdir()
    port = free_port()
    server_conf = directory / "forward-auth.conf"
    server_conf.write_text(
        render(
            EXAMPLE.read_text(),
            LISTEN=f"{LOOPBACK}:{port}",
            GATEWAY=f"{LOOPBACK}:{gateway}",
            UPSTREAM=f"{LOOPBACK}:{upstream}",
            AUDIENCE=AUDIENCE,
        )
    )
    (directory / "nginx.conf").write_text(main_config(directory, server_conf))
    test = subprocess.run(
        nginx_command(binary, directory, "-t"), capture_output=True, text=True, timeout=30
    )
    assert test.returncode == 0, f"nginx -t refused the example:\n{test.stderr}"
    with (directory / "stderr.log").open("wb") as output:
        process = subprocess.Popen(
            nginx_command(binary, directory), stdout=output, stderr=subprocess.STDOUT
        )
    try:
        await wait_listening(process, port, directory)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        stop(process)


# -- the whole stack ---------------------------------------------------------------------------


@dataclass
class Stack:
    client: ClientSession
    gateway: RunningGateway
    upstream: Upstream
    nginx: str
    user: User
    token: str

    @property
    def keys(self) -> dict[str, bytes]:
        """What `gateway context-key echo` gives the service behind nginx."""
        core = self.gateway.core
        assert core.service_keyring is not None
        return derive_keys(core.service_keyring.keys, AUDIENCE)

    def bearer(self, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **more}

    async def call(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> tuple[int, Any, bytes]:
        """A request through nginx with aiohttp."""
        url = URL(self.nginx + target, encoded=True)
        async with self.client.request(method, url, headers=headers, data=body) as response:
            return response.status, response.headers.copy(), await response.read()

    async def raw_call(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> RawResponse:
        """A request through nginx with `target` on the wire exactly as written (aiohttp's
        URL handling would drop an empty query, for one)."""
        lines = [f"{method} {target} HTTP/1.1", "Host: protected.test", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        port = int(self.nginx.rsplit(":", 1)[1])
        return await raw_request(port, head + body, timeout=10.0)


@pytest.fixture
async def stack(
    nginx_binary: Path, client: ClientSession, upstream: Upstream, tmp_path: Path
) -> AsyncIterator[Stack]:
    """Gateway (shipped routes.yaml) in-process, an echo upstream, nginx with the example in
    front of it; a user logged in through the gateway."""
    async with running_gateway(SHIPPED_ROUTES.read_text(), tmp_path) as gateway:
        core = gateway.core
        user = await core.accounts.create(EMAIL, PASSWORD, roles=("user",), verified=True)
        async with client.post(
            gateway.url + "/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
        ) as response:
            assert response.status == 200, await response.text()
            token = str((await response.json())["access_token"])
        async with running_nginx(
            nginx_binary, tmp_path / "nginx", gateway=gateway.port, upstream=upstream.port
        ) as nginx:
            yield Stack(client, gateway, upstream, nginx, user, token)


def problem(status: int, headers: Any, body: bytes) -> dict[str, Any]:
    """The gateway's problem+json, as nginx passed it through."""
    assert headers["Content-Type"].startswith(PROBLEM), (status, headers, body[:200])
    document: dict[str, Any] = json.loads(body)
    assert document["status"] == status
    assert document["type"] == f"urn:gateway:error:{document['error']}"
    assert document["request_id"] == headers["X-Request-Id"]
    return document


def received_headers(document: dict[str, Any]) -> dict[str, str]:
    """What the echo upstream received, one value a name (it must not see duplicates)."""
    received = {name.lower(): value for name, value in document["headers"]}
    assert len(received) == len(document["headers"]), f"duplicates: {document['headers']}"
    return received


# -- refusals ----------------------------------------------------------------------------------


async def test_no_token_gets_the_gateways_401(stack: Stack) -> None:
    status, headers, body = await stack.call("GET", "/orders/7", {})
    assert status == 401
    assert problem(status, headers, body)["error"] == "missing_credentials"
    assert headers.getall("WWW-Authenticate") == ['Bearer realm="gateway"']
    assert stack.upstream.seen == []


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c3JfMSJ9."],
    ids=["garbage", "alg none"],
)
async def test_a_bad_token_gets_the_gateways_401(stack: Stack, authorization: str) -> None:
    status, headers, body = await stack.call(
        "POST", "/orders", {"Authorization": authorization}, b"{}"
    )
    assert status == 401
    assert problem(status, headers, body)["error"] == "invalid_token"
    assert headers.getall("WWW-Authenticate") == ['Bearer realm="gateway", error="invalid_token"']
    assert stack.upstream.seen == []


async def test_a_refusal_keeps_the_clients_request_id(stack: Stack) -> None:
    status, headers, body = await stack.call("GET", "/orders", {"X-Request-Id": "trace-401"})
    assert status == 401
    assert problem(status, headers, body)["request_id"] == "trace-401"


async def test_an_origin_not_allowed_gets_the_gateways_403(stack: Stack) -> None:
    status, headers, body = await stack.call(
        "GET", "/orders", stack.bearer(Origin="https://evil.example")
    )
    assert status == 403
    assert problem(status, headers, body)["error"] == "origin_not_allowed"
    assert stack.upstream.seen == []


async def test_after_logout_the_token_is_refused_through_nginx(stack: Stack) -> None:
    status, _, _ = await stack.call("GET", "/orders", stack.bearer())
    assert status == 200
    async with stack.client.post(
        stack.gateway.url + "/api/v1/auth/logout", headers=stack.bearer()
    ) as response:
        assert response.status == 204
    status, headers, body = await stack.call("GET", "/orders", stack.bearer())
    assert status == 401
    assert problem(status, headers, body)["error"] == "token_revoked"
    assert len(stack.upstream.seen) == 1


# -- a valid token -----------------------------------------------------------------------------


TARGETS = [
    # (description, method, request target as the client sends it)
    ("path and query", "POST", "/orders?id=7"),
    ("root", "GET", "/"),
    ("escapes kept", "PUT", "/files/a%20b/%7Euser?q=%2F&x=caf%C3%A9"),
    ("empty query", "DELETE", "/orders/7?"),
    ("dot segments", "GET", "/a/./b/../c?x=1"),
    ("double slash", "PATCH", "/a//b"),
]


@pytest.mark.parametrize(("method", "target"), cases(TARGETS))
async def test_a_valid_token_reaches_the_upstream_with_a_verifiable_context(
    stack: Stack, method: str, target: str
) -> None:
    """The service gets the target byte for byte, and the signature is for exactly that."""
    response = await stack.raw_call(method, target, stack.bearer(), b"payload")
    assert response.status == 200, response.body[:500]
    [seen] = stack.upstream.seen
    assert response.json() == seen
    assert (seen["method"], seen["path"]) == (method, target)
    assert seen["body"] == "payload"  # only the auth call goes without the body
    headers = received_headers(seen)
    assert headers["x-user-id"] == stack.user.id
    assert headers["x-auth-method"] == "jwt"
    assert headers["x-user-email"] == EMAIL
    assert headers["x-user-roles"] == "user"
    assert headers["x-user-email-verified"] == "true"
    assert headers["x-gateway-signature"].startswith("v2,kid=")
    assert ",aud=echo,sig=" in headers["x-gateway-signature"]
    context = verify(stack.keys, AUDIENCE, seen["method"], seen["path"], headers)
    assert context.user_id == stack.user.id
    assert context.session_id == headers["x-session-id"]
    assert context.request_id == headers["x-request-id"]
    with pytest.raises(ContextError):
        verify(stack.keys, AUDIENCE, seen["method"], seen["path"] + "&admin=1", headers)


async def test_client_sent_identity_headers_never_reach_the_upstream(stack: Stack) -> None:
    status, _, _ = await stack.call("GET", "/orders", stack.bearer(**FORGED_IDENTITY))
    assert status == 200
    headers = received_headers(stack.upstream.seen[0])
    assert headers["x-user-id"] == stack.user.id
    assert headers["x-user-roles"] == "user"
    assert headers["x-auth-method"] == "jwt"
    assert "x-tenant-id" not in headers  # the gateway sent none: nginx drops the client's
    assert "x-credential-id" not in headers
    assert headers["x-user-email-verified"] == "true"
    assert verify(stack.keys, AUDIENCE, "GET", "/orders", headers).user_id == stack.user.id


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("trace-42", True), ("x" * 65, False), ("bad id!", False)],
    ids=["valid", "too long", "bad characters"],
)
async def test_the_request_id_is_one_from_client_to_upstream(
    stack: Stack, sent: str, kept: bool
) -> None:
    status, _, _ = await stack.call("GET", "/orders", stack.bearer(**{"X-Request-Id": sent}))
    assert status == 200
    headers = received_headers(stack.upstream.seen[0])
    assert (headers["x-request-id"] == sent) is kept
    assert (
        verify(stack.keys, AUDIENCE, "GET", "/orders", headers).request_id
        == headers["x-request-id"]
    )


# -- the examples themselves (no proxy needed) --------------------------------------------------

CONTEXT_HEADERS = [name.title() for name in SIGNED] + ["X-Gateway-Timestamp", "X-Gateway-Signature"]


def test_the_nginx_example_documents_its_placeholders_and_sets_every_header() -> None:
    text = EXAMPLE.read_text()
    for name in ("LISTEN", "GATEWAY", "UPSTREAM", "AUDIENCE"):
        assert "{{" + name + "}}" in text
    assert "proxy_pass http://gateway_auth/api/v1/auth/validate?aud={{AUDIENCE}};" in text
    assert "rewrite ^ /api/v1/auth/validate?aud={{AUDIENCE}}? break;" in text
    for header in CONTEXT_HEADERS:
        variable = "$upstream_http_" + header.lower().replace("-", "_")
        assert re.search(rf"auth_request_set\s+(\$\w+)\s+{re.escape(variable)};", text), header
        assert re.search(rf"proxy_set_header\s+{header}\s+\$gw_\w+;", text), header


async def test_nginx_not_in_forward_auth_clients_gets_no_context(
    nginx_binary: Path, client: ClientSession, upstream: Upstream, tmp_path: Path
) -> None:
    """The gateway answers forwardAuth only to listed proxies: with nginx's address (loopback)
    not in GATEWAY_FORWARD_AUTH_CLIENTS, a valid token gets the gateway's 403 through nginx and
    nothing reaches the service."""
    settings = quiet_settings(forward_auth_clients=netaddr.IPSet(["10.0.0.0/8"]))
    async with running_gateway(SHIPPED_ROUTES.read_text(), tmp_path, settings) as gateway:
        core = gateway.core
        await core.accounts.create(EMAIL, PASSWORD, roles=("user",), verified=True)
        async with client.post(
            gateway.url + "/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
        ) as response:
            assert response.status == 200
            token = str((await response.json())["access_token"])
        async with (
            running_nginx(
                nginx_binary, tmp_path / "nginx", gateway=gateway.port, upstream=upstream.port
            ) as nginx,
            client.get(nginx + "/orders", headers={"Authorization": f"Bearer {token}"}) as response,
        ):
            status, headers, body = response.status, response.headers, await response.read()
    assert status == 403
    assert problem(status, headers, body)["error"] == "forward_auth_not_allowed"
    assert upstream.seen == []
