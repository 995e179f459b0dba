"""forwardAuth (docs/authentication.md): `GET /api/v1/auth/validate` called directly, as Traefik,
nginx `auth_request` or Caddy `forward_auth` would call it, on the gateway serving the shipped
routes.yaml."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netaddr
import pytest
import yaml
from aiohttp import ClientSession

from auth_core.models import User
from auth_core.service import AuthCore
from auth_core.tokens import AccessTokens, Keyring
from gateway.config import Settings, SettingsError
from gateway.context import ContextError, derive_keys, verify
from tests.support import FORGED_IDENTITY, RunningGateway, cases, quiet_settings, running_gateway

SHIPPED_ROUTES = Path(__file__).resolve().parents[2] / "routes.yaml"
VALIDATE = "/api/v1/auth/validate"
EMAIL = "ann@example.com"
PASSWORD = "correct horse battery staple"
PROBLEM = "application/problem+json"
FORWARD_AUTH = "forward_auth"  # the audience when no `aud` is given


@dataclass
class Stack:
    gateway: RunningGateway
    client: ClientSession
    user: User
    token: str

    @property
    def core(self) -> AuthCore:
        return self.gateway.core

    @property
    def keys(self) -> dict[str, bytes]:
        """What a service behind forwardAuth without `aud` verifies with."""
        return self.keys_for(FORWARD_AUTH)

    def keys_for(self, audience: str) -> dict[str, bytes]:
        keyring = self.core.service_keyring
        assert keyring is not None
        return derive_keys(keyring.keys, audience)

    async def validate(
        self, headers: Mapping[str, str], query: str = ""
    ) -> tuple[int, Mapping[str, str], bytes]:
        url = self.gateway.url + VALIDATE + query
        async with self.client.get(url, headers=headers) as response:
            return response.status, response.headers.copy(), await response.read()

    def bearer(self, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **more}


async def log_in(gateway: RunningGateway, client: ClientSession) -> str:
    """An access token, from a login through the gateway."""
    async with client.post(
        gateway.url + "/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
    ) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["access_token"])


@asynccontextmanager
async def started(
    client: ClientSession, directory: Path, settings: Settings | None = None
) -> AsyncIterator[Stack]:
    async with running_gateway(SHIPPED_ROUTES.read_text(), directory, settings) as gateway:
        core = gateway.core
        user = await core.accounts.create(EMAIL, PASSWORD, roles=("user",), verified=True)
        yield Stack(gateway, client, user, await log_in(gateway, client))


@pytest.fixture
async def stack(client: ClientSession, tmp_path: Path) -> AsyncIterator[Stack]:
    """The gateway on the shipped routes.yaml, a user, and an access token of theirs."""
    async with started(client, tmp_path) as running:
        yield running


def shipped_origins() -> list[str]:
    document: dict[str, Any] = yaml.safe_load(SHIPPED_ROUTES.read_text())
    return list(document.get("origins") or [])


def problem(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The problem+json document of an error answer (docs/errors.md)."""
    assert headers["Content-Type"].startswith(PROBLEM), (status, headers)
    document: dict[str, Any] = json.loads(body)
    assert document["status"] == status
    assert document["type"] == f"urn:gateway:error:{document['error']}"
    assert document["request_id"] == headers["X-Request-Id"]
    assert set(document) >= {"type", "title", "status", "detail", "error", "request_id"}
    return document


# -- 200 ---------------------------------------------------------------------------------------


async def test_a_valid_token_gets_200_with_the_context_headers(stack: Stack) -> None:
    before = int(time.time())
    status, headers, body = await stack.validate(stack.bearer(**{"X-Request-Id": "req-77"}))
    assert status == 200
    assert body == b""
    assert headers["X-Auth-Method"] == "jwt"
    assert headers["X-User-Id"] == stack.user.id
    assert headers["X-User-Email"] == EMAIL
    assert headers["X-User-Roles"] == "user"
    assert headers["X-Session-Id"].startswith("ses_")
    assert headers["X-Request-Id"] == "req-77"
    assert "X-Tenant-Id" not in headers  # a platform user has no tenant
    assert before <= int(headers["X-Gateway-Timestamp"]) <= time.time()
    assert headers["X-User-Email-Verified"] == "true"
    assert headers["X-Gateway-Signature"].startswith("v2,kid=")
    assert ",aud=forward_auth,sig=" in headers["X-Gateway-Signature"]
    assert headers["Cache-Control"] == "no-store"  # a proxy must not reuse a yes


async def test_the_signature_covers_the_forwarded_method_and_uri(stack: Stack) -> None:
    status, headers, _ = await stack.validate(
        stack.bearer(**{"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/orders?id=7"})
    )
    assert status == 200
    context = verify(stack.keys, FORWARD_AUTH, "POST", "/orders?id=7", headers)
    assert context.user_id == stack.user.id
    assert context.auth_method == "jwt"
    assert context.roles == ("user",)
    assert context.session_id == headers["X-Session-Id"]
    for method, path in [
        ("POST", "/orders?id=8"),
        ("POST", "/orders"),
        ("POST", "/payments?id=7"),
        ("GET", "/orders?id=7"),
    ]:
        with pytest.raises(ContextError, match="does not match"):
            verify(stack.keys, FORWARD_AUTH, method, path, headers)


async def test_the_signature_does_not_verify_with_another_key(stack: Stack) -> None:
    _, headers, _ = await stack.validate(stack.bearer(**{"X-Forwarded-Uri": "/x"}))
    kid = headers["X-Gateway-Signature"].split(",")[1].removeprefix("kid=")
    with pytest.raises(ContextError):
        verify(
            {kid: b"not-the-gateway-key-but-32-bytes-long!!"}, FORWARD_AUTH, "GET", "/x", headers
        )


async def test_client_sent_context_headers_are_not_echoed(stack: Stack) -> None:
    """Whatever identity the client claims, the answer is the token's."""
    status, headers, _ = await stack.validate(stack.bearer(**FORGED_IDENTITY))
    assert status == 200
    assert headers["X-User-Id"] == stack.user.id
    assert headers["X-User-Roles"] == "user"
    assert headers["X-Auth-Method"] == "jwt"
    assert "X-Tenant-Id" not in headers
    assert "X-Credential-Id" not in headers
    assert verify(stack.keys, FORWARD_AUTH, "GET", "/", headers).user_id == stack.user.id


# -- 401 ---------------------------------------------------------------------------------------


def _expired(stack: Stack) -> str:
    tokens = stack.core.tokens
    assert tokens is not None
    token, _ = tokens.issue(
        subject=stack.user.id,
        session_id="ses_gone",
        roles=("user",),
        tenant_id=None,
        email=EMAIL,
        now=time.time() - 3600,
    )
    return token


def _foreign_key(stack: Stack) -> str:
    """Well-formed, same kid, signed with a secret the gateway does not have."""
    tokens = stack.core.tokens
    assert tokens is not None
    kid = tokens.keyring.current[0]
    other = AccessTokens(
        Keyring.parse(Keyring.generate(kid)),
        issuer=tokens.issuer,
        audience=tokens.audience,
        ttl=tokens.ttl,
    )
    token, _ = other.issue(
        subject=stack.user.id, session_id="ses_x", roles=("admin",), tenant_id=None, email=EMAIL
    )
    return token


REFUSALS: list[tuple[str, Any, str, str]] = [
    # (description, Authorization made from the stack (None: no header), error, WWW-Authenticate)
    ("no credential", lambda s: None, "missing_credentials", 'Bearer realm="gateway"'),
    ("not bearer", lambda s: f"Basic {s.token}", "missing_credentials", 'Bearer realm="gateway"'),
    ("empty bearer", lambda s: "Bearer ", "missing_credentials", 'Bearer realm="gateway"'),
    ("not a JWT", lambda s: "Bearer nope", "invalid_token", "invalid_token"),
    ("tampered", lambda s: f"Bearer {s.token[:-2]}AA", "invalid_token", "invalid_token"),
    ("foreign key", lambda s: f"Bearer {_foreign_key(s)}", "invalid_token", "invalid_token"),
    ("expired", lambda s: f"Bearer {_expired(s)}", "token_expired", "invalid_token"),
]


@pytest.mark.parametrize(("authorization", "error", "challenge"), cases(REFUSALS))
async def test_a_missing_or_invalid_token_gets_401(
    stack: Stack, authorization: Any, error: str, challenge: str
) -> None:
    value = authorization(stack)
    headers = {} if value is None else {"Authorization": value}
    status, answer, body = await stack.validate(headers)
    assert status == 401
    assert problem(status, answer, body)["error"] == error
    assert challenge in answer["WWW-Authenticate"]
    assert answer["WWW-Authenticate"].startswith('Bearer realm="gateway"')
    assert "X-User-Id" not in answer
    assert "X-Gateway-Signature" not in answer


async def test_a_revoked_token_gets_401(stack: Stack) -> None:
    assert (await stack.validate(stack.bearer()))[0] == 200
    async with stack.client.post(
        stack.gateway.url + "/api/v1/auth/logout", headers=stack.bearer()
    ) as response:
        assert response.status == 204
    status, headers, body = await stack.validate(stack.bearer())
    assert status == 401
    assert problem(status, headers, body)["error"] == "token_revoked"
    assert headers["WWW-Authenticate"] == 'Bearer realm="gateway", error="invalid_token"'


# -- 403: origin -------------------------------------------------------------------------------


async def test_an_origin_not_on_the_list_gets_403(stack: Stack) -> None:
    assert "https://evil.example" not in shipped_origins()
    status, headers, body = await stack.validate(stack.bearer(Origin="https://evil.example"))
    assert status == 403
    assert problem(status, headers, body)["error"] == "origin_not_allowed"
    assert "X-User-Id" not in headers


async def test_an_origin_on_the_list_or_none_gets_200(stack: Stack) -> None:
    origins = shipped_origins()
    assert origins, "the shipped routes.yaml lists origins"
    for extra in [{"Origin": origins[0]}, {"Origin": origins[-1]}, {}]:
        status, headers, _ = await stack.validate(stack.bearer(**extra))
        assert status == 200, extra
        assert headers["X-User-Id"] == stack.user.id


async def test_an_origin_check_needs_a_valid_token_first(stack: Stack) -> None:
    """No token and a bad origin: 401 (who are you), not 403."""
    status, headers, body = await stack.validate({"Origin": "https://evil.example"})
    assert status == 401
    assert problem(status, headers, body)["error"] == "missing_credentials"


# -- the client address ------------------------------------------------------------------------


def access_log_remotes(path: Path) -> list[str]:
    """`remote` of every access-log line for the validate endpoint."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line["remote"] for line in lines if line["path"] == VALIDATE]


def context_of(headers: Mapping[str, str]) -> dict[str, str]:
    """The identity headers of an answer (not the per-request ones)."""
    names = ("X-Auth-Method", "X-User-Id", "X-User-Email", "X-User-Roles", "X-Session-Id")
    return {name: headers[name] for name in names if name in headers}


async def test_x_forwarded_for_from_an_untrusted_peer_changes_nothing(
    client: ClientSession, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    settings = Settings(access_log=str(log), watch_config=False)
    async with started(client, tmp_path, settings) as stack:
        plain = await stack.validate(stack.bearer())
        forged = await stack.validate(stack.bearer(**{"X-Forwarded-For": "203.0.113.7"}))
        assert plain[0] == forged[0] == 200
        assert context_of(plain[1]) == context_of(forged[1])
        assert verify(stack.keys, FORWARD_AUTH, "GET", "/", forged[1]).user_id == stack.user.id
        refused = await stack.validate({"X-Forwarded-For": "203.0.113.7"})
        assert refused[0] == 401
    # The log is flushed when the gateway stops.
    assert access_log_remotes(log) == ["127.0.0.1", "127.0.0.1", "127.0.0.1"]


async def test_x_forwarded_for_from_a_trusted_proxy_is_the_client(
    client: ClientSession, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    settings = Settings(
        access_log=str(log),
        watch_config=False,
        trusted_proxies=netaddr.IPSet(["127.0.0.0/8"]),
    )
    async with started(client, tmp_path, settings) as stack:
        chain = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7, 127.0.0.9"}
        status, headers, _ = await stack.validate(stack.bearer(**chain))
        assert status == 200
        assert headers["X-User-Id"] == stack.user.id
        status, _, _ = await stack.validate({"X-Forwarded-For": "198.51.100.4"})
        assert status == 401
        await stack.validate(stack.bearer())
    # Read right to left past trusted hops; what the client wrote left of that proves nothing.
    assert access_log_remotes(log) == ["203.0.113.7", "198.51.100.4", "127.0.0.1"]


# -- who may ask, and for which audience ------------------------------------------------------


async def test_a_peer_not_listed_in_forward_auth_clients_gets_403(
    client: ClientSession, tmp_path: Path
) -> None:
    """A logged-in user calling /validate from an address that is not a listed proxy must not
    have a context signed (it would be a signing oracle for any method and path): loopback is
    not in 10.0.0.0/8, and X-Forwarded-For naming a listed address changes nothing."""
    settings = quiet_settings(
        forward_auth_clients=netaddr.IPSet(["10.0.0.0/8"]),
        # Loopback a trusted proxy: X-Forwarded-For then moves the client address to 10.0.0.1,
        # which must still not make the caller a listed proxy (the TCP peer is what counts).
        trusted_proxies=netaddr.IPSet(["127.0.0.0/8"]),
    )
    async with started(client, tmp_path, settings) as stack:
        for headers in (
            stack.bearer(),
            stack.bearer(**{"X-Forwarded-For": "10.0.0.1"}),
            stack.bearer(**{"X-Real-IP": "10.0.0.1", "Forwarded": "for=10.0.0.1"}),
        ):
            status, answer, body = await stack.validate(
                headers | {"X-Forwarded-Method": "DELETE", "X-Forwarded-Uri": "/admin/users/1"}
            )
            assert status == 403
            assert problem(status, answer, body)["error"] == "forward_auth_not_allowed"
            assert "X-Gateway-Signature" not in answer
            assert "X-User-Id" not in answer
        # The rest of the auth core's API is not affected.
        async with stack.client.get(
            stack.gateway.url + "/api/v1/auth/me", headers=stack.bearer()
        ) as response:
            assert response.status == 200


def test_forward_auth_clients_default_is_loopback() -> None:
    clients = Settings.from_env({}).forward_auth_clients
    assert netaddr.IPAddress("127.0.0.1") in clients
    assert netaddr.IPAddress("127.8.9.10") in clients
    assert netaddr.IPAddress("::1") in clients
    assert netaddr.IPAddress("10.0.0.1") not in clients
    assert netaddr.IPAddress("192.168.1.1") not in clients


@pytest.mark.parametrize("value", ["10.0.0.0/33", "proxy.example", "10.0.0.0/8,,nope"])
def test_a_bad_forward_auth_clients_value_stops_start_up(value: str) -> None:
    with pytest.raises(SettingsError, match="GATEWAY_FORWARD_AUTH_CLIENTS"):
        Settings.from_env({"GATEWAY_FORWARD_AUTH_CLIENTS": value})


async def test_aud_names_the_upstream_whose_key_signs(stack: Stack) -> None:
    forwarded = {"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/orders?id=7"}
    status, headers, _ = await stack.validate(stack.bearer(**forwarded), "?aud=echo")
    assert status == 200
    assert ",aud=echo,sig=" in headers["X-Gateway-Signature"]
    context = verify(stack.keys_for("echo"), "echo", "POST", "/orders?id=7", headers)
    assert context.user_id == stack.user.id
    # Neither the default audience's keys nor its name verify it.
    with pytest.raises(ContextError):
        verify(stack.keys, FORWARD_AUTH, "POST", "/orders?id=7", headers)
    with pytest.raises(ContextError, match="another audience"):
        verify(stack.keys_for("echo"), FORWARD_AUTH, "POST", "/orders?id=7", headers)


async def test_without_aud_the_answer_is_not_valid_for_an_upstream(stack: Stack) -> None:
    status, headers, _ = await stack.validate(stack.bearer())
    assert status == 200
    with pytest.raises(ContextError, match="another audience"):
        verify(stack.keys_for("echo"), "echo", "GET", "/", headers)


@pytest.mark.parametrize(
    "query",
    ["?aud=billing", "?aud=auth_core", "?aud=", "?aud=echo&aud=echo", "?aud=ECHO", "?aud=echo%00"],
    ids=["unknown", "built-in", "empty", "twice", "other case", "trailing nul"],
)
async def test_an_aud_that_is_not_an_upstream_gets_400(stack: Stack, query: str) -> None:
    status, headers, body = await stack.validate(stack.bearer(), query)
    assert status == 400
    assert problem(status, headers, body)["error"] == "invalid_request"
    assert "X-Gateway-Signature" not in headers


async def test_an_unverified_address_is_signed_as_unverified(stack: Stack) -> None:
    await stack.core.accounts.create("bob@example.com", PASSWORD, roles=("user",))
    async with stack.client.post(
        stack.gateway.url + "/api/v1/auth/login",
        json={"email": "bob@example.com", "password": PASSWORD},
    ) as response:
        assert response.status == 200
        token = (await response.json())["access_token"]
    status, headers, _ = await stack.validate({"Authorization": f"Bearer {token}"})
    assert status == 200
    assert headers["X-User-Email"] == "bob@example.com"
    assert headers["X-User-Email-Verified"] == "false"
    assert verify(stack.keys, FORWARD_AUTH, "GET", "/", headers).email_verified is False
    forged = {**headers, "X-User-Email-Verified": "true"}
    with pytest.raises(ContextError, match="does not match"):
        verify(stack.keys, FORWARD_AUTH, "GET", "/", forged)
