"""examples/express on Node behind a real gateway: the Express service trusts the gateway's
signed context through kits/node's middleware (`req.gateway`), and refuses whatever the gateway
did not sign for it, for that request, within the minute.

client -> gateway (jwt route, strip_prefix) -> node examples/express/server.js
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hmac
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession

from auth_core.tokens import Keyring
from gateway.context import sign
from tests.node import EXPRESS_EXAMPLE, installed, node_binary
from tests.support import (
    FORGED_IDENTITY,
    LOOPBACK,
    RunningGateway,
    auth_settings,
    cases,
    quiet_settings,
    raw_request,
    running_gateway,
)

SECRET = "k1:express-example-secret-for-tests-only"
PASSWORD = "correct horse battery staple"
PROBLEM = "application/problem+json"
START_TIMEOUT = 30.0  # seconds node may take to listen on a busy machine


def context_key(audience: str) -> tuple[str, bytes]:
    """What `gateway context-key AUDIENCE` prints for SECRET, worked out by hand (README
    "Context headers to upstreams"), and the key itself."""
    kid, _, secret = SECRET.partition(":")
    key = hmac.new(secret.encode(), b"gateway context v2\n" + audience.encode(), "sha256").digest()
    return f"{kid}:{base64.urlsafe_b64encode(key).rstrip(b'=').decode()}", key


@dataclass
class Service:
    """examples/express/server.js running under node."""

    process: asyncio.subprocess.Process
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


@contextlib.asynccontextmanager
async def express_service(environment: Mapping[str, str]) -> AsyncIterator[Service]:
    """The example started as its README says (`node server.js`), on a port the kernel picks;
    yields once it printed that it listens."""
    example = installed(EXPRESS_EXAMPLE, "express", "@gateway/context")
    process = await asyncio.create_subprocess_exec(
        node_binary(),
        "server.js",
        cwd=example,
        env={"PATH": "/usr/bin:/bin", "HOST": LOOPBACK, "PORT": "0", **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)).decode()
        if not line.startswith(f"listening on http://{LOOPBACK}:"):
            assert process.stderr is not None
            pytest.fail(f"the example did not start: {line!r} {await process.stderr.read()!r}")
        port = int(line.split()[2].rsplit(":", 1)[1])
        yield Service(process, port)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


@dataclass
class Stack:
    client: ClientSession
    gateway: RunningGateway
    service: Service
    tokens: dict[str, str]  # e-mail -> access token
    users: dict[str, str]  # e-mail -> user id

    async def call(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, **options: Any
    ) -> tuple[int, Mapping[str, str], Any]:
        async with self.client.request(method, url, headers=headers, **options) as response:
            body = await response.read()
            document = json.loads(body) if body else None
            return response.status, response.headers.copy(), document

    def bearer(self, email: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[email]}"}

    async def signed_by_gateway(self, email: str, method: str, target: str) -> dict[str, str]:
        """The context headers the gateway signs for `billing`, for this method and target, as
        forwardAuth hands them to a proxy (GET /api/v1/auth/validate?aud=billing)."""
        headers = {
            **self.bearer(email),
            "X-Forwarded-Method": method,
            "X-Forwarded-Uri": target,
        }
        url = self.gateway.url + "/api/v1/auth/validate?aud=billing"
        async with self.client.get(url, headers=headers) as response:
            assert response.status == 200, await response.text()
            return {
                name: value
                for name, value in response.headers.items()
                if name.lower().startswith(("x-user-", "x-auth-", "x-session-", "x-gateway-"))
                or name.lower() == "x-request-id"
            }


def gateway_routes(service: str) -> str:
    """The example's routes.yaml (as its README has the developer use it) pointed at the
    service, plus a route to it as `orders` (another audience) and one with `auth: none`."""
    document = yaml.safe_load((EXPRESS_EXAMPLE / "routes.yaml").read_text())
    assert document["upstreams"]["billing"]["targets"] == ["http://127.0.0.1:3000"]
    document["upstreams"] = {"billing": {"targets": [service]}, "orders": {"targets": [service]}}
    document["routes"] += [
        {
            "name": "orders",
            "path": "/orders",
            "upstream": "orders",
            "auth": "jwt",
            "strip_prefix": True,
        },
        {
            "name": "open",
            "path": "/open",
            "upstream": "billing",
            "auth": "none",
            "strip_prefix": True,
        },
    ]
    return str(yaml.safe_dump(document))


ANN = "ann@example.com"  # a user
ROOT = "root@example.com"  # an admin
ZOE = "zo\u00eb@example.com"  # an address beyond ASCII: UTF-8 on the wire, latin1 to Node


@pytest.fixture
async def stack(client: ClientSession, tmp_path: Path) -> AsyncIterator[Stack]:
    """The example configured with billing's key, a gateway in front of it, two users logged
    in."""
    keys, _ = context_key("billing")
    async with express_service({"GATEWAY_CONTEXT_KEYS": keys}) as service:
        table = gateway_routes(service.url)
        settings = dataclasses.replace(
            quiet_settings(),
            auth=auth_settings(tmp_path, service_keyring=Keyring.parse(SECRET)),
        )
        async with running_gateway(table, tmp_path, settings) as gateway:
            tokens, users = {}, {}
            for email, roles in ((ANN, ("user",)), (ROOT, ("user", "admin")), (ZOE, ("user",))):
                user = await gateway.core.accounts.create(
                    email, PASSWORD, roles=roles, verified=True
                )
                users[email] = user.id
                async with client.post(
                    gateway.url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
                ) as response:
                    assert response.status == 200, await response.text()
                    tokens[email] = str((await response.json())["access_token"])
            yield Stack(client, gateway, service, tokens, users)


def assert_refused(status: int, headers: Mapping[str, str], document: Any, reason: str) -> None:
    """The middleware's 401: problem+json with the reason, and nothing more of the service."""
    assert status == 401, document
    assert headers["Content-Type"].startswith(PROBLEM), headers
    assert headers["WWW-Authenticate"] == 'GatewayContext audience="billing"'
    assert document["type"] == "urn:gateway:error:invalid_context"
    assert (document["status"], document["error"]) == (401, "invalid_context")
    assert document["reason"] == reason, document


# -- through the gateway -----------------------------------------------------------------------


async def test_the_service_gets_the_user_the_gateway_authenticated(stack: Stack) -> None:
    status, headers, me = await stack.call(
        "GET", stack.gateway.url + "/billing/me", stack.bearer(ANN)
    )
    assert status == 200, me
    assert me == {
        "authMethod": "jwt",
        "requestId": headers["X-Request-Id"],
        "userId": stack.users[ANN],
        "email": ANN,
        "emailVerified": True,
        "roles": ["user"],
        "tenantId": None,
        "sessionId": me["sessionId"],
        "credentialId": None,
        "timestamp": me["timestamp"],
    }
    assert me["sessionId"].startswith("ses_")
    assert abs(me["timestamp"] - time.time()) < 60


async def test_an_address_beyond_ascii_arrives_as_it_was_signed(stack: Stack) -> None:
    status, _, me = await stack.call("GET", stack.gateway.url + "/billing/me", stack.bearer(ZOE))
    assert status == 200, me
    assert (me["userId"], me["email"]) == (stack.users[ZOE], "zo\u00eb@example.com")


async def test_each_user_sees_their_own_data_and_roles_decide(stack: Stack) -> None:
    url = stack.gateway.url + "/billing/invoices"
    status, _, created = await stack.call("POST", url, stack.bearer(ANN), json={"amount": 12})
    assert (status, created) == (201, {"id": "inv_1", "amount": 12})
    status, _, mine = await stack.call("GET", url, stack.bearer(ANN))
    assert mine == {"owner": stack.users[ANN], "invoices": [{"id": "inv_1", "amount": 12}]}
    status, _, theirs = await stack.call("GET", url, stack.bearer(ROOT))
    assert theirs == {"owner": stack.users[ROOT], "invoices": []}

    status, headers, refused = await stack.call("DELETE", url, stack.bearer(ANN))
    assert status == 403
    assert headers["Content-Type"].startswith(PROBLEM)
    assert (refused["title"], refused["detail"]) == ("Forbidden", "the role admin is needed")
    status, _, _ = await stack.call("DELETE", url, stack.bearer(ROOT))
    assert status == 204
    status, _, mine = await stack.call("GET", url, stack.bearer(ANN))
    assert mine["invoices"] == []


async def test_a_clients_own_identity_headers_never_reach_the_service(stack: Stack) -> None:
    headers = {**stack.bearer(ANN), **FORGED_IDENTITY}
    status, _, me = await stack.call("GET", stack.gateway.url + "/billing/me", headers)
    assert status == 200, me
    assert (me["userId"], me["roles"], me["tenantId"]) == (stack.users[ANN], ["user"], None)


async def test_an_anonymous_route_gets_no_user(stack: Stack) -> None:
    status, _, me = await stack.call("GET", stack.gateway.url + "/open/me")
    assert status == 200, me
    assert (me["authMethod"], me["userId"], me["roles"]) == ("none", None, [])
    status, _, refused = await stack.call("GET", stack.gateway.url + "/open/invoices")
    assert (status, refused["error"]) == (401, "missing_user")


async def test_a_context_signed_for_another_upstream_is_refused(stack: Stack) -> None:
    """The gateway signs for `orders` when routing there; the service is `billing`."""
    status, headers, document = await stack.call(
        "GET", stack.gateway.url + "/orders/me", stack.bearer(ANN)
    )
    assert_refused(status, headers, document, "wrong_audience")


# -- straight to the service, as someone on its network would -----------------------------------


async def test_a_context_from_the_gateway_holds_for_its_own_request(stack: Stack) -> None:
    signed = await stack.signed_by_gateway(ANN, "GET", "/me")
    status, _, me = await stack.call("GET", stack.service.url + "/me", signed)
    assert (status, me["userId"]) == (200, stack.users[ANN])


REPLAYS = [
    # (description, method, target): the context was signed for GET /me
    ("another path", "GET", "/invoices"),
    ("another method", "DELETE", "/me"),
    ("a query added", "GET", "/me?admin=1"),
]


@pytest.mark.parametrize(("method", "target"), cases(REPLAYS))
async def test_a_context_replayed_to_another_request_is_refused(
    stack: Stack, method: str, target: str
) -> None:
    signed = await stack.signed_by_gateway(ANN, "GET", "/me")
    status, headers, document = await stack.call(method, stack.service.url + target, signed)
    assert_refused(status, headers, document, "mismatch")


async def test_a_tampered_context_is_refused(stack: Stack) -> None:
    signed = await stack.signed_by_gateway(ANN, "GET", "/invoices")
    for name, value in (("X-User-Id", stack.users[ROOT]), ("X-User-Roles", "user,admin")):
        status, headers, document = await stack.call(
            "GET", stack.service.url + "/invoices", {**signed, name: value}
        )
        assert_refused(status, headers, document, "mismatch")


FORGERIES = [
    # (description, headers beside the client's own X-User-Id, reason)
    ("no signature", {}, "no_signature"),
    (
        "a made-up signature",
        {"X-Gateway-Signature": "v2,kid=k1,aud=billing,sig=forged"},
        "mismatch",
    ),
    ("a v1 signature", {"X-Gateway-Signature": "v1,kid=k1,sig=forged"}, "v1_signature"),
    ("the forged identity of the tests", FORGED_IDENTITY, "wrong_audience"),
    ("an unknown kid", {"X-Gateway-Signature": "v2,kid=k9,aud=billing,sig=x"}, "unknown_key"),
]


@pytest.mark.parametrize(("extra", "reason"), cases(FORGERIES))
async def test_a_forged_context_is_refused(
    stack: Stack, extra: dict[str, str], reason: str
) -> None:
    headers = {"X-User-Id": "usr_admin", "X-User-Roles": "admin", **extra}
    headers.setdefault("X-Gateway-Timestamp", str(int(time.time())))
    status, answer_headers, document = await stack.call("GET", stack.service.url + "/me", headers)
    assert_refused(status, answer_headers, document, reason)


CLOCK = [
    # (description, seconds from now of the timestamp, status)
    ("now", 0, 200),
    ("50 s ago", -50, 200),
    ("two minutes ago", -120, 401),
    ("30 s ahead", 30, 401),
]


@pytest.mark.parametrize(("offset", "status"), cases(CLOCK))
async def test_only_a_recent_signature_holds(stack: Stack, offset: int, status: int) -> None:
    """Signed here with billing's key (the gateway always signs with its own clock)."""
    _, key = context_key("billing")
    values = {"x-auth-method": "jwt", "x-user-id": "usr_clock"}
    stamp, signature = sign("k1", key, "billing", "GET", "/me", values, int(time.time()) + offset)
    headers = {
        "X-Auth-Method": "jwt",
        "X-User-Id": "usr_clock",
        "X-Gateway-Timestamp": stamp,
        "X-Gateway-Signature": signature,
    }
    got, answer_headers, document = await stack.call("GET", stack.service.url + "/me", headers)
    if status == 200:
        assert (got, document["userId"]) == (200, "usr_clock")
    else:
        assert_refused(got, answer_headers, document, "stale")


@pytest.mark.parametrize("name", ["X-User-Id", "X-User-Roles", "X-Gateway-Signature"])
async def test_a_signed_header_sent_twice_is_refused(stack: Stack, name: str) -> None:
    """Node joins a repeated header with ", " in req.headers; the middleware reads rawHeaders."""
    signed = await stack.signed_by_gateway(ROOT, "GET", "/me")
    lines = ["GET /me HTTP/1.1", f"Host: {LOOPBACK}", "Connection: close"]
    lines += [f"{header}: {value}" for header, value in signed.items()]
    lines.append(f"{name}: {signed[name]}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    response = await raw_request(stack.service.port, head, timeout=10.0)
    assert response.status == 401, response.body
    assert (response.header("Content-Type") or "").startswith(PROBLEM)
    assert response.json()["reason"] == "duplicate_header"
    assert response.json()["detail"] == f"{name.lower()} appears more than once"


# -- start-up ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({}, "set GATEWAY_CONTEXT_KEYS to the output of `gateway context-key billing`"),
        (
            {"GATEWAY_CONTEXT_KEYS": "k1:c2hvcnQ"},
            'GATEWAY_CONTEXT_KEYS: the key of kid "k1" is not 32 bytes, or the kid appears twice',
        ),
    ],
    ids=["no keys", "a short key"],
)
async def test_a_broken_configuration_stops_it_with_one_line(
    environment: dict[str, str], message: str
) -> None:
    installed(EXPRESS_EXAMPLE, "express", "@gateway/context")
    process = await asyncio.create_subprocess_exec(
        node_binary(),
        "server.js",
        cwd=EXPRESS_EXAMPLE,
        env={"PATH": "/usr/bin:/bin", "PORT": "0", **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    assert (process.returncode, stdout) == (2, b"")
    assert stderr.decode() == f"express example: {message}\n"
