"""A user's whole life through the gateway, on SQLite and on PostgreSQL: signup, login, a
signed request to a real upstream, session status and extension, refresh rotation and reuse,
logout; the refusals (missing, malformed and revoked tokens, roles, origins, forged identity
headers, login answers that must not tell accounts apart); the e-mail flows read from the
outbox, and tokens that are each good for one thing only; the admin API and its audit log;
and a user imported with a bcrypt hash.

Every request goes through a real gateway (the auth core's API is its built-in upstream
`auth_core`) to a real echo upstream that reports the headers it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import asyncpg
import bcrypt
import jwt
import pytest
from aiohttp import ClientSession, ClientTimeout, TCPConnector

from auth_core.service import AuthCore, CallInfo
from auth_core.tokens import Keyring
from gateway.context import Context, derive_keys, verify
from tests.auth_core.helpers import mailed_token
from tests.conftest import REDIS_URL
from tests.mail_server import mail_server
from tests.support import (
    Answer,
    RunningGateway,
    Upstream,
    access_claims,
    assert_problem,
    cases,
    fetch,
    quiet_settings,
    raw_request,
    received_headers,
    routes,
    running_gateway,
)
from tests.support import auth_settings as auth_settings

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple battery horse"
TIMEOUT = ClientTimeout(total=60)
ORIGIN = "https://app.example.com"

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
NOTES = "/v1/notes"  # auth: jwt, any role
ADMIN_ONLY = "/v1/admin"  # auth: jwt, roles [admin]
OPEN = "/v1/open"  # auth: none

AUTH_CORE_ROUTES = (
    "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
    "{name: users, path: /api/v1/users, upstream: auth_core, auth: jwt, roles: [admin]}",
    "{name: audit, path: /api/v1/audit, upstream: auth_core, auth: jwt, roles: [admin]}",
)
# A table whose admin routes were left at `auth: none` by mistake: the API must still refuse.
MISCONFIGURED_ROUTES = (
    "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
    "{name: users, path: /api/v1/users, upstream: auth_core, auth: none}",
    "{name: audit, path: /api/v1/audit, upstream: auth_core, auth: none}",
)


def route_table(upstream: Upstream, auth_core_routes: tuple[str, ...] = AUTH_CORE_ROUTES) -> str:
    return routes(
        {"echo": [upstream.url]},
        *auth_core_routes,
        f"{{name: notes, path: {NOTES}, upstream: echo, auth: jwt}}",
        f"{{name: admin-only, path: {ADMIN_ONLY}, upstream: echo, auth: jwt, roles: [admin]}}",
        f"{{name: open, path: {OPEN}, upstream: echo, auth: none}}",
        extra=f'origins: ["{ORIGIN}"]',
    )


# -- the site under test -----------------------------------------------------------------------


@dataclass
class Site:
    """A running gateway, its echo upstream, a client, and where its mail goes."""

    gateway: RunningGateway
    upstream: Upstream
    client: ClientSession
    directory: Path
    database_url: str

    @property
    def core(self) -> AuthCore:
        return self.gateway.core

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """`body` is sent as JSON, `data` as it is."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return await fetch(
            self.client,
            method,
            self.gateway.url + path,
            json=body,
            data=data,
            headers=sent,
            timeout=TIMEOUT,
        )

    async def add_user(self, address: str, *, roles: tuple[str, ...] = ("user",)) -> str:
        user = await self.core.accounts.create(address, PASSWORD, roles=roles, verified=True)
        return user.id

    async def login(self, address: str, password: str = PASSWORD) -> dict[str, Any]:
        answer = await self.call("POST", LOGIN, body={"email": address, "password": password})
        assert answer.status == 200, answer.body
        pair: dict[str, Any] = answer.json()
        return pair

    async def refresh(self, refresh_token: str) -> Answer:
        return await self.call("POST", REFRESH, body={"refresh_token": refresh_token})

    async def settle(self) -> None:
        """Wait for the work the auth core does after answering (mail of forgot-password,
        failed-login counting, audit entries of refusals)."""
        await self.core.background_work.drain()

    def mails(self, to: str) -> list[EmailMessage]:
        """The messages in the outbox addressed to `to`, oldest first."""
        outbox = self.directory / "outbox"
        found = []
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            message = message_from_bytes(path.read_bytes(), policy=default_policy)
            assert isinstance(message, EmailMessage)
            if message["To"] == to:
                found.append(message)
        return found

    def mail_count(self) -> int:
        outbox = self.directory / "outbox"
        return len(list(outbox.glob("*.eml"))) if outbox.exists() else 0


@asynccontextmanager
async def open_site(
    tmp_path: Path,
    database_url: str,
    upstream: Upstream,
    client: ClientSession,
    auth_core_routes: tuple[str, ...] = AUTH_CORE_ROUTES,
    **auth: Any,
) -> AsyncIterator[Site]:
    settings = quiet_settings(
        auth=auth_settings(tmp_path, database_url=database_url, **auth),
    )
    async with running_gateway(
        route_table(upstream, auth_core_routes), tmp_path, settings
    ) as gateway:
        yield Site(gateway, upstream, client, tmp_path, database_url)


OpenSite = Callable[..., AbstractAsyncContextManager[Site]]


@pytest.fixture
def site_with(
    tmp_path: Path, database_url: str, upstream: Upstream, client: ClientSession
) -> OpenSite:
    """The site with a test's own routes or auth settings, as `open_site` takes them:
    `async with site_with(require_verified_email=True) as site`."""
    return functools.partial(open_site, tmp_path, database_url, upstream, client)


@pytest.fixture
async def site(site_with: OpenSite) -> AsyncIterator[Site]:
    async with site_with() as running:
        yield running


def echo_context(site: Site, seen: dict[str, Any], headers: dict[str, list[str]]) -> Context:
    """The signed context the echo upstream received (`headers`: `received_headers(seen)`),
    verified with the key `gateway context-key echo` gives it."""
    keyring = site.core.service_keyring
    assert keyring is not None
    return verify(
        derive_keys(keyring.keys, "echo"),
        "echo",
        seen["method"],
        seen["path"],
        {name: values[0] for name, values in headers.items()},
    )


# -- the session life cycle --------------------------------------------------------------------


async def test_session_life_cycle(site: Site) -> None:
    address = "ada@example.com"
    signup = await site.call(
        "POST", "/api/v1/auth/signup", body={"email": address, "password": PASSWORD}
    )
    assert signup.status == 201, signup.body
    user = signup.json()["user"]
    assert (user["email"], user["roles"], user["email_verified"]) == (address, ["user"], False)
    assert "password_hash" not in user

    login = await site.call("POST", LOGIN, body={"email": address, "password": PASSWORD})
    assert login.status == 200, login.body
    assert login.headers["Cache-Control"] == "no-store"
    pair = login.json()
    assert pair["token_type"] == "Bearer"
    assert isinstance(pair["expires_in"], int)
    assert pair["expires_in"] > 0
    assert pair["user"]["id"] == user["id"]
    session_id = pair["session_id"]

    # A signed request to the upstream.
    forwarded = await site.call("GET", f"{NOTES}/7?draft=1", token=pair["access_token"])
    assert forwarded.status == 200, forwarded.body
    seen = site.upstream.seen[-1]
    headers = received_headers(seen)
    assert seen["path"] == f"{NOTES}/7?draft=1"
    expected = {
        "x-auth-method": "jwt",
        "x-user-id": user["id"],
        "x-user-email": address,
        "x-user-email-verified": "false",  # signed up, never confirmed
        "x-user-roles": "user",
        "x-session-id": session_id,
        "x-request-id": forwarded.request_id,
    }
    for name, value in expected.items():
        assert headers.get(name) == [value], name
    assert len(headers["x-gateway-timestamp"]) == 1
    assert headers["x-gateway-signature"][0].startswith("v2,kid=")
    assert ",aud=echo,sig=" in headers["x-gateway-signature"][0]
    context = echo_context(site, seen, headers)
    assert (context.auth_method, context.user_id, context.email) == ("jwt", user["id"], address)
    assert context.email_verified is False
    assert (context.roles, context.session_id) == (("user",), session_id)
    assert context.request_id == forwarded.request_id

    me = await site.call("GET", ME, token=pair["access_token"])
    assert me.status == 200, me.body
    assert me.json()["user"]["id"] == user["id"]
    assert me.json()["session_id"] == session_id

    status = await site.call("GET", "/api/v1/auth/session/status", token=pair["access_token"])
    assert status.status == 200, status.body
    state = status.json()
    assert (state["active"], state["session_id"], state["user_id"]) == (
        True,
        session_id,
        user["id"],
    )

    extend = await site.call("POST", "/api/v1/auth/session/extend", token=pair["access_token"])
    assert extend.status == 200, extend.body
    extended = extend.json()["access_token"]
    assert extend.json()["session_id"] == session_id
    assert (await site.call("GET", NOTES, token=extended)).status == 200
    assert received_headers(site.upstream.seen[-1])["x-session-id"] == [session_id]

    refresh = await site.refresh(pair["refresh_token"])
    assert refresh.status == 200, refresh.body
    renewed = refresh.json()
    assert renewed["session_id"] == session_id
    assert renewed["refresh_token"] != pair["refresh_token"]
    assert renewed["access_token"] not in (pair["access_token"], extended)
    assert (await site.call("GET", NOTES, token=renewed["access_token"])).status == 200

    logout = await site.call("POST", LOGOUT, token=renewed["access_token"])
    assert (logout.status, logout.body) == (204, b"")

    # Every access token of the session is refused at once, not at its expiry.
    for token in (pair["access_token"], extended, renewed["access_token"]):
        for path in (NOTES, ME):
            assert_problem(await site.call("GET", path, token=token), 401, "token_revoked")
    # And no refresh token of it works any more (the spent one and the live one).
    for refresh_token in (pair["refresh_token"], renewed["refresh_token"]):
        assert_problem(await site.refresh(refresh_token), 401, "invalid_token")


async def test_reused_refresh_token_ends_the_session(site: Site) -> None:
    await site.add_user("bob@example.com")
    first = await site.login("bob@example.com")
    refresh = await site.refresh(first["refresh_token"])
    assert refresh.status == 200, refresh.body
    newest = refresh.json()

    assert_problem(await site.refresh(first["refresh_token"]), 401, "invalid_token")
    # The whole session is gone: the newest pair too, not only the replayed token.
    assert_problem(
        await site.call("GET", NOTES, token=newest["access_token"]), 401, "token_revoked"
    )
    assert_problem(await site.refresh(newest["refresh_token"]), 401, "invalid_token")
    assert_problem(await site.call("GET", NOTES, token=first["access_token"]), 401, "token_revoked")


async def test_concurrent_refresh_with_one_token(site: Site) -> None:
    await site.add_user("carol@example.com")
    pair = await site.login("carol@example.com")
    answers = await asyncio.gather(*(site.refresh(pair["refresh_token"]) for _ in range(5)))
    statuses = sorted(answer.status for answer in answers)
    assert statuses.count(200) <= 1, statuses
    for answer in answers:
        if answer.status != 200:
            assert_problem(answer, 401, "invalid_token")
    # The losers presented a spent token: the session is revoked, the winner's pair with it.
    for answer in answers:
        if answer.status == 200:
            winner = answer.json()
            assert_problem(
                await site.call("GET", NOTES, token=winner["access_token"]), 401, "token_revoked"
            )
            assert_problem(await site.refresh(winner["refresh_token"]), 401, "invalid_token")


TOKEN_KINDS = [
    # (id, token kind presented, where)
    ("refresh token as a bearer token", "refresh", "bearer"),
    ("access token as a refresh token", "access", "refresh"),
    ("verification token to reset a password", "verify", "reset-password"),
    ("reset token to verify an e-mail", "reset", "verify-email"),
]


@pytest.mark.parametrize(("kind", "where"), cases(TOKEN_KINDS))
async def test_each_token_is_good_for_one_thing(site: Site, kind: str, where: str) -> None:
    address = "olga@example.com"
    signup = await site.call(
        "POST", "/api/v1/auth/signup", body={"email": address, "password": PASSWORD}
    )
    assert signup.status == 201
    pair = await site.login(address)
    await site.call("POST", "/api/v1/auth/forgot-password", body={"email": address})
    await site.settle()
    verify_mail, reset_mail = site.mails(address)
    tokens = {
        "access": pair["access_token"],
        "refresh": pair["refresh_token"],
        "verify": mailed_token(verify_mail),
        "reset": mailed_token(reset_mail),
    }
    token = tokens[kind]
    if where == "bearer":
        answer = await site.call("GET", NOTES, token=token)
    elif where == "refresh":
        answer = await site.refresh(token)
    else:
        answer = await site.call(
            "POST", f"/api/v1/auth/{where}", body={"token": token, "password": NEW_PASSWORD}
        )
    assert_problem(answer, 401, "invalid_token")
    # The refused token was not spent by the attempt: it still works where it belongs.
    if kind == "verify":
        done = await site.call("POST", "/api/v1/auth/verify-email", body={"token": token})
        assert done.status == 200, done.body
    elif kind == "reset":
        done = await site.call(
            "POST", "/api/v1/auth/reset-password", body={"token": token, "password": NEW_PASSWORD}
        )
        assert done.status == 200, done.body
    elif kind == "refresh":
        assert (await site.refresh(token)).status == 200
    else:
        assert (await site.call("GET", NOTES, token=token)).status == 200


# -- credentials and roles ---------------------------------------------------------------------


def foreign_token() -> str:
    """A JWT shaped like ours but signed with a key the gateway does not have."""
    claims = access_claims(
        time.time(), sub="usr_attacker", sid="ses_attacker", jti="j1", roles=["admin"]
    )
    headers = {"kid": "s1", "typ": "at+jwt"}
    return jwt.encode(claims, "x" * 48, algorithm="HS256", headers=headers)


CREDENTIALS = [
    # (id, path, credential, status, code); credential: a role to log in with, or a header
    ("no credential", NOTES, None, 401, "missing_credentials"),
    ("basic scheme", NOTES, "Basic dXNlcjpwYXNzd29yZA==", 401, "missing_credentials"),
    ("empty bearer", NOTES, "Bearer ", 401, "missing_credentials"),
    ("garbage token", NOTES, "Bearer not-a-token", 401, "invalid_token"),
    ("three garbage parts", NOTES, "Bearer a.b.c", 401, "invalid_token"),
    ("foreign signing key", NOTES, "foreign", 401, "invalid_token"),
    ("user on a jwt route", NOTES, "user", 200, None),
    ("user on an admin route", ADMIN_ONLY, "user", 403, "insufficient_role"),
    ("admin on an admin route", ADMIN_ONLY, "admin", 200, None),
    ("user on the users API", "/api/v1/users", "user", 403, "insufficient_role"),
    ("admin on the users API", "/api/v1/users", "admin", 200, None),
    ("no credential on the users API", "/api/v1/users", None, 401, "missing_credentials"),
    ("no credential on me", ME, None, 401, "missing_credentials"),
    ("garbage token on me", ME, "Bearer not-a-token", 401, "invalid_token"),
]


@pytest.mark.parametrize(("path", "credential", "status", "code"), cases(CREDENTIALS))
async def test_credentials_and_roles(
    site: Site, path: str, credential: str | None, status: int, code: str | None
) -> None:
    headers = {}
    if credential in ("user", "admin"):
        address = f"{credential}@example.com"
        await site.add_user(address, roles=(credential,))
        headers["Authorization"] = "Bearer " + (await site.login(address))["access_token"]
    elif credential == "foreign":
        headers["Authorization"] = "Bearer " + foreign_token()
    elif credential is not None:
        headers["Authorization"] = credential
    answer = await site.call("GET", path, headers=headers)
    if code is None:
        assert answer.status == status, answer.body
    else:
        assert_problem(answer, status, code)


# -- login answers that do not tell accounts apart ---------------------------------------------


async def lock_out(site: Site, address: str) -> None:
    """Five wrong passwords in a row from this client: its next try has to wait."""
    for _ in range(5):
        answer = await site.call(
            "POST", LOGIN, body={"email": address, "password": "wrong password!"}
        )
        assert_problem(answer, 401, "invalid_credentials")


LOGIN_BODIES = [
    # (id, body as sent, status, code)
    ("e-mail", b'{"email": "nina@example.com", "password": "%s"}', 200, None),
    (
        "username instead of e-mail",
        b'{"username": "nina@example.com", "password": "%s"}',
        200,
        None,
    ),
    ("e-mail in another case", b'{"email": "Nina@EXAMPLE.com", "password": "%s"}', 200, None),
    ("no password", b'{"email": "nina@example.com"}', 400, "invalid_request"),
    ("e-mail not a string", b'{"email": 7, "password": "%s"}', 400, "invalid_request"),
    ("not JSON", b"email=nina@example.com&password=%s", 400, "invalid_request"),
    ("a JSON array", b'["nina@example.com", "%s"]', 400, "invalid_request"),
    ("empty body", b"", 400, "invalid_request"),
]


@pytest.mark.parametrize(("data", "status", "code"), cases(LOGIN_BODIES))
async def test_login_request_bodies(site: Site, data: bytes, status: int, code: str | None) -> None:
    user_id = await site.add_user("nina@example.com")
    body = data.replace(b"%s", PASSWORD.encode())
    answer = await site.call("POST", LOGIN, data=body, headers={"Content-Type": "application/json"})
    if code is not None:
        assert_problem(answer, status, code)
        return
    assert answer.status == status, answer.body
    assert answer.json()["user"]["id"] == user_id
    assert (await site.call("GET", NOTES, token=answer.json()["access_token"])).status == 200


async def test_login_refusals_are_indistinguishable(site: Site) -> None:
    await site.add_user("known@example.com")
    disabled_id = await site.add_user("disabled@example.com")
    await site.core.accounts.update(disabled_id, {"disabled": True}, None, CallInfo())

    cases = [
        # (id, e-mail, password): each would be a login but for one thing
        ("unknown e-mail", "nobody@example.com", PASSWORD),
        ("wrong password", "known@example.com", "not the password"),
        ("disabled account, right password", "disabled@example.com", PASSWORD),
    ]
    answers = {}
    for case, address, password in cases:
        answer = await site.call("POST", LOGIN, body={"email": address, "password": password})
        assert_problem(answer, 401, "invalid_credentials")
        body = answer.json()
        del body["request_id"]
        answers[case] = (
            answer.status,
            answer.headers["Content-Type"],
            answer.headers["WWW-Authenticate"],
            body,
        )
    reference = answers["unknown e-mail"]
    for case, seen in answers.items():
        assert seen == reference, case


@pytest.fixture(params=["in-process", "redis"])
def login_counts(request: pytest.FixtureRequest) -> dict[str, str]:
    """Where failed logins are counted: this process, or Redis (a key prefix of the test's)."""
    if request.param == "in-process":
        return {}
    return {"redis_url": REDIS_URL, "redis_prefix": str(request.getfixturevalue("redis_prefix"))}


@pytest.fixture
async def elsewhere() -> AsyncIterator[ClientSession]:
    """A client whose connections come from 127.0.0.2."""
    async with ClientSession(connector=TCPConnector(local_addr=("127.0.0.2", 0))) as session:
        yield session


async def test_failed_logins_hold_back_one_address_not_the_owner_elsewhere(
    site_with: OpenSite, elsewhere: ClientSession, login_counts: dict[str, str]
) -> None:
    async with site_with(**login_counts) as site:
        await site.add_user("victim@example.com")
        seen = {}
        for address in ("victim@example.com", "nobody@example.com"):
            await lock_out(site, address)
            # Now even the right password waits, with the same answer for an unknown account.
            held = await site.call("POST", LOGIN, body={"email": address, "password": PASSWORD})
            assert_problem(held, 429, "rate_limited")
            assert held.headers["Retry-After"] == "1"
            body = held.json()
            del body["request_id"]
            seen[address] = (body, held.headers["Retry-After"])
        assert seen["victim@example.com"] == seen["nobody@example.com"]

        # The owner, from another address, logs in: the guessing did not lock them out.
        away = dataclasses.replace(site, client=elsewhere)
        pair = await away.login("victim@example.com")
        assert (await away.call("GET", NOTES, token=pair["access_token"])).status == 200

        # The wait runs out; one more wrong password makes the next one twice as long.
        await asyncio.sleep(1.05)
        again = await site.call(
            "POST", LOGIN, body={"email": "victim@example.com", "password": "wrong password!"}
        )
        assert_problem(again, 401, "invalid_credentials")
        held = await site.call(
            "POST", LOGIN, body={"email": "victim@example.com", "password": PASSWORD}
        )
        assert_problem(held, 429, "rate_limited")
        assert held.headers["Retry-After"] == "2"
        if login_counts:
            link = site.core.redis
            assert link is not None
            assert link.failures == 0  # counted in Redis, not in a fallback


async def test_concurrent_wrong_passwords_are_held_back_like_consecutive_ones(
    site_with: OpenSite, login_counts: dict[str, str]
) -> None:
    # Twenty guesses sent at once, so that none has failed yet when the others are checked:
    # they must not all be tried. Five are free; a sixth could be tried only after a whole
    # second's wait, a seventh after two more.
    async with site_with(**login_counts) as site:
        await site.add_user("victim@example.com")
        answers = await asyncio.gather(
            *(
                site.call(
                    "POST",
                    LOGIN,
                    body={"email": "victim@example.com", "password": f"guess number {n}"},
                )
                for n in range(20)
            )
        )
        statuses = [answer.status for answer in answers]
        assert set(statuses) == {401, 429}, statuses
        assert statuses.count(401) <= 6, statuses


# -- identity headers only the gateway sets ----------------------------------------------------

FORGED = [
    # (name as sent, value): every case and a duplicate of some
    ("X-User-Id", "usr_forged"),
    ("x-user-id", "usr_forged_again"),
    ("x-user-roles", "admin"),
    ("X-USER-ROLES", "admin,root"),
    ("X-User-Email", "root@example.com"),
    ("X-Auth-Method", "service"),
    ("x-AUTH-method", "api_key"),
    ("X-Session-Id", "ses_forged"),
    ("X-Gateway-Signature", "v1,kid=s1,sig=forged"),
    ("X-Gateway-Signature", "v2,kid=s1,aud=echo,sig=forged"),
    ("X-User-Email-Verified", "true"),  # mallory never confirmed her address
    ("x-gateway-signature", "v1,kid=k1,sig=forged-too"),
    ("X-Gateway-Timestamp", "1"),
    ("X-Tenant-Id", "ten_forged"),
    ("X-Credential-Id", "key_forged"),
]
FORGED_VALUES = {value for _, value in FORGED}
IDENTITY = (
    "x-auth-method",
    "x-user-id",
    "x-user-email",
    "x-user-email-verified",
    "x-user-roles",
    "x-tenant-id",
    "x-session-id",
    "x-credential-id",
    "x-gateway-timestamp",
    "x-gateway-signature",
)

FORGED_ROUTES = [
    # (id, path, logged in, status, what the upstream must see)
    (
        "jwt route",
        f"{NOTES}/forged",
        True,
        200,
        {"x-auth-method": "jwt", "x-user-roles": "user"},
    ),
    ("auth none route", f"{OPEN}/forged", False, 200, {"x-auth-method": "none"}),
    ("admin route with forged admin role", f"{ADMIN_ONLY}/forged", True, 403, None),
]


@pytest.mark.parametrize(("path", "logged_in", "status", "identity"), cases(FORGED_ROUTES))
async def test_forged_identity_headers_never_reach_the_upstream(
    site: Site, path: str, logged_in: bool, status: int, identity: dict[str, str] | None
) -> None:
    mallory = await site.core.accounts.create("mallory@example.com", PASSWORD, roles=("user",))
    user_id = mallory.id
    lines = [f"GET {path} HTTP/1.1", "Host: gateway.test", "Connection: close"]
    session_id = None
    if logged_in:
        pair = await site.login("mallory@example.com")
        session_id = pair["session_id"]
        lines.append(f"Authorization: Bearer {pair['access_token']}")
    lines += [f"{name}: {value}" for name, value in FORGED]
    before = len(site.upstream.seen)
    answer = await raw_request(
        site.gateway.port, ("\r\n".join(lines) + "\r\n\r\n").encode(), timeout=30
    )
    assert answer.status == status, answer.body
    if identity is None:
        assert len(site.upstream.seen) == before  # refused before the upstream
        return
    seen = site.upstream.seen[-1]
    headers = received_headers(seen)
    for name in IDENTITY:
        assert len(headers.get(name, [])) <= 1, name
        assert not FORGED_VALUES & set(headers.get(name, [])), name
    for name, value in identity.items():
        assert headers[name] == [value]
    if logged_in:
        assert headers["x-user-id"] == [user_id]
        assert headers["x-session-id"] == [session_id]
        assert headers["x-user-email"] == ["mallory@example.com"]
        assert headers["x-user-email-verified"] == ["false"]
    else:
        for name in ("x-user-id", "x-user-email", "x-user-roles", "x-session-id"):
            assert name not in headers
    assert "x-tenant-id" not in headers
    assert "x-credential-id" not in headers
    context = echo_context(site, seen, headers)
    assert context.auth_method == identity["x-auth-method"]


# -- origins for users without a tenant --------------------------------------------------------

EVIL = "https://evil.example.com"
ORIGINS = [
    # (id, method, path, Origin or None, status, code, known bug)
    ("whitelisted origin", "GET", NOTES, ORIGIN, 200, None, False),
    ("whitelisted origin, default port spelt out", "GET", NOTES, ORIGIN + ":443", 200, None, False),
    ("no Origin (not a browser)", "GET", NOTES, None, 200, None, False),
    ("another origin", "GET", NOTES, EVIL, 403, "origin_not_allowed", False),
    ("Origin null", "GET", NOTES, "null", 403, "origin_not_allowed", False),
    (
        "whitelisted host as a prefix",
        "GET",
        NOTES,
        ORIGIN + ".evil.com",
        403,
        "origin_not_allowed",
        False,
    ),
    ("other scheme", "GET", NOTES, "http://app.example.com", 403, "origin_not_allowed", False),
    ("other port", "GET", NOTES, ORIGIN + ":8443", 403, "origin_not_allowed", False),
    ("userinfo trick", "GET", NOTES, ORIGIN + "@evil.com", 403, "origin_not_allowed", False),
    ("admin API, another origin", "GET", "/api/v1/users", EVIL, 403, "origin_not_allowed", False),
    ("auth API, whitelisted origin", "GET", ME, ORIGIN, 200, None, False),
    ("auth API, no Origin", "GET", ME, None, 200, None, False),
    ("auth API me, another origin", "GET", ME, EVIL, 403, "origin_not_allowed", True),
    (
        "auth API session extend, another origin",
        "POST",
        "/api/v1/auth/session/extend",
        EVIL,
        403,
        "origin_not_allowed",
        True,
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "origin", "status", "code"),
    [pytest.param(*case[1:6], id=case[0]) for case in ORIGINS],
)
async def test_origins_of_tenantless_users(
    site: Site, method: str, path: str, origin: str | None, status: int, code: str | None
) -> None:
    roles = ("admin",) if path == "/api/v1/users" else ("user",)
    await site.add_user("erin@example.com", roles=roles)
    token = (await site.login("erin@example.com"))["access_token"]
    headers = {"Origin": origin} if origin is not None else {}
    answer = await site.call(method, path, token=token, headers=headers)
    if code is None:
        assert answer.status == status, answer.body
    else:
        assert_problem(answer, status, code)


# -- e-mail flows ------------------------------------------------------------------------------


async def test_signup_mails_a_verification_token(site: Site) -> None:
    address = "frank@example.com"
    signup = await site.call(
        "POST", "/api/v1/auth/signup", body={"email": address, "password": PASSWORD}
    )
    assert signup.status == 201, signup.body
    await site.settle()
    mails = site.mails(address)
    assert len(mails) == 1
    assert mails[0]["Subject"] == "Confirm your e-mail address"
    token = mailed_token(mails[0])

    pair = await site.login(address)
    me = await site.call("GET", ME, token=pair["access_token"])
    assert me.json()["user"]["email_verified"] is False

    verified = await site.call("POST", "/api/v1/auth/verify-email", body={"token": token})
    assert verified.status == 200, verified.body
    assert verified.json()["user"]["email_verified"] is True
    me = await site.call("GET", ME, token=pair["access_token"])
    assert me.json()["user"]["email_verified"] is True

    for case, replay in (("reused token", token), ("unknown token", "x" * 43)):
        answer = await site.call("POST", "/api/v1/auth/verify-email", body={"token": replay})
        assert answer.status == 401, case
        assert_problem(answer, 401, "invalid_token")


async def test_signup_with_a_taken_address_answers_as_a_new_signup_does(site: Site) -> None:
    taken = "judith@example.com"
    owner_id = await site.add_user(taken)
    before = (await site.core.accounts.get(owner_id)).public()
    fresh = await site.call(
        "POST",
        "/api/v1/auth/signup",
        body={"email": "newcomer@example.com", "password": PASSWORD, "name": "Eve"},
    )
    again = await site.call(
        "POST",
        "/api/v1/auth/signup",
        body={"email": taken.upper(), "password": NEW_PASSWORD, "name": "Eve"},
    )
    assert (fresh.status, again.status) == (201, 201), again.body
    assert again.headers["Content-Type"] == fresh.headers["Content-Type"]
    assert set(again.json()) == set(fresh.json()) == {"user"}
    user, new_user = again.json()["user"], fresh.json()["user"]
    assert set(user) == set(new_user)
    assert {k: type(v) for k, v in user.items()} == {k: type(v) for k, v in new_user.items()}
    # What it shows is what was sent, as for a new account: nothing of the existing one.
    assert (user["email"], user["name"], user["roles"]) == (taken, "Eve", ["user"])
    assert (user["email_verified"], user["disabled"], user["tenant_id"]) == (False, False, None)
    assert user["id"] != owner_id
    assert re.fullmatch(r"usr_[0-9a-f]{20}", user["id"])
    assert len(user["id"]) == len(new_user["id"])
    assert user["created_at"] != before["created_at"]
    # ... and nothing of it changed: same record, same password.
    assert (await site.core.accounts.get(owner_id)).public() == before
    await site.login(taken, PASSWORD)
    refused = await site.call("POST", LOGIN, body={"email": taken, "password": NEW_PASSWORD})
    assert_problem(refused, 401, "invalid_credentials")
    await site.settle()
    (mail,) = site.mails(taken)
    assert mail["Subject"] == "You already have an account"
    text = mail.get_content()
    assert "/api/v1/auth/forgot-password" in text
    assert not re.findall(r"^([A-Za-z0-9_-]{40,})$", text, flags=re.MULTILINE)  # no token
    assert [m["Subject"] for m in site.mails("newcomer@example.com")] == [
        "Confirm your e-mail address"
    ]


RESEND = "/api/v1/auth/verify-email/resend"


async def test_required_verification_keeps_an_unverified_user_out_until_confirmed(
    site_with: OpenSite,
) -> None:
    async with site_with(require_verified_email=True) as site:
        address = "ursula@example.com"
        signup = await site.call(
            "POST", "/api/v1/auth/signup", body={"email": address, "password": PASSWORD}
        )
        assert signup.status == 201, signup.body
        # A wrong password learns nothing about the address: the usual 401.
        wrong = await site.call("POST", LOGIN, body={"email": address, "password": "nope nope"})
        assert_problem(wrong, 401, "invalid_credentials")
        held = await site.call("POST", LOGIN, body={"email": address, "password": PASSWORD})
        assert_problem(held, 403, "email_not_verified")
        assert RESEND in held.json()["detail"]
        assert "access_token" not in held.body.decode()

        # The first mail got lost: ask for another, answered at once whoever asks.
        await site.add_user("root@example.com")  # verified: nothing to resend
        answers = [
            await site.call("POST", RESEND, body={"email": who})
            for who in (address, "nobody@example.com", "root@example.com")
        ]
        assert {(a.status, a.body) for a in answers} == {(202, b'{"status":"accepted"}')}
        await site.settle()
        assert [m["Subject"] for m in site.mails(address)] == ["Confirm your e-mail address"] * 2
        assert site.mails("nobody@example.com") == site.mails("root@example.com") == []
        token = mailed_token(site.mails(address)[-1])
        verified = await site.call("POST", "/api/v1/auth/verify-email", body={"token": token})
        assert verified.status == 200, verified.body
        pair = await site.login(address)
        assert (await site.call("GET", NOTES, token=pair["access_token"])).status == 200


async def test_required_verification_ends_a_session_at_its_next_refresh(
    site_with: OpenSite,
) -> None:
    async with site_with(require_verified_email=True) as site:
        # A session of an unconfirmed user that began before the setting was turned on.
        user = await site.core.accounts.create("victor@example.com", PASSWORD)
        pair = await site.core.sessions.open(user, CallInfo())
        extend = "/api/v1/auth/session/extend"
        extended = await site.call("POST", extend, token=pair.access_token)
        assert_problem(extended, 403, "email_not_verified")
        refused = await site.refresh(pair.refresh_token)
        assert_problem(refused, 403, "email_not_verified")
        # The session is over: its access token too.
        assert_problem(await site.call("GET", NOTES, token=pair.access_token), 401, "token_revoked")


async def test_an_address_marked_unconfirmed_ends_the_sessions_at_once(site: Site) -> None:
    """Its access tokens say the address was confirmed, and upstreams are told so
    (X-User-Email-Verified): they die with the change, not at their expiry."""
    await site.add_user("root@example.com", roles=("admin",))
    admin = (await site.login("root@example.com"))["access_token"]
    user_id = await site.add_user("vera@example.com")
    pair = await site.login("vera@example.com")
    assert (await site.call("GET", NOTES, token=pair["access_token"])).status == 200
    changed = await site.call(
        "PATCH", f"/api/v1/users/{user_id}", token=admin, body={"email_verified": False}
    )
    assert changed.status == 200, changed.body
    assert_problem(await site.call("GET", NOTES, token=pair["access_token"]), 401, "token_revoked")
    assert (await site.refresh(pair["refresh_token"])).status == 401


async def test_without_the_setting_an_unverified_user_logs_in(site: Site) -> None:
    address = "wendy@example.com"
    await site.core.accounts.create(address, PASSWORD)
    pair = await site.login(address)
    assert (await site.refresh(pair["refresh_token"])).status == 200


async def test_forgot_password_answers_alike_for_unknown_addresses(site: Site) -> None:
    await site.add_user("grace@example.com")
    before = site.mail_count()
    known = await site.call(
        "POST", "/api/v1/auth/forgot-password", body={"email": "grace@example.com"}
    )
    assert known.status == 202, known.body
    await site.settle()
    assert site.mail_count() == before + 1
    mails = site.mails("grace@example.com")
    assert [mail["Subject"] for mail in mails] == ["Reset your password"]
    mailed_token(mails[0])

    unknown = await site.call(
        "POST", "/api/v1/auth/forgot-password", body={"email": "nobody@example.com"}
    )
    assert unknown.status == 202, unknown.body
    assert unknown.body == known.body
    assert unknown.headers["Content-Type"] == known.headers["Content-Type"]
    await site.settle()
    assert site.mail_count() == before + 1
    assert site.mails("nobody@example.com") == []


async def test_forgot_password_answers_before_doing_the_work(site_with: OpenSite) -> None:
    """The mail server holds its greeting: the 202 still comes, for a known address as for an
    unknown one, and the mail goes once the server answers; a shutdown waits for it."""
    async with mail_server(hold=True) as smtp:
        async with site_with(mail_url=smtp.url) as site:
            await site.add_user("grace@example.com")
            known = await site.call(
                "POST", "/api/v1/auth/forgot-password", body={"email": "grace@example.com"}
            )
            unknown = await site.call(
                "POST", "/api/v1/auth/forgot-password", body={"email": "nobody@example.com"}
            )
            assert (known.status, known.body) == (202, b'{"status":"accepted"}')
            assert (unknown.status, unknown.body) == (known.status, known.body)
            await smtp.connected.wait()  # the mail is on its way, held at the greeting
            assert smtp.messages == []
            # A shutdown now still delivers it: the worker waits for the work it owes.
            worker = site.gateway.worker
            stopping = asyncio.create_task(worker.stop())
            deadline = time.monotonic() + 30
            while worker.gateway is not None:  # drained; the auth core is closing
                assert time.monotonic() < deadline, "the worker never got to its auth core"
                await asyncio.sleep(0.01)
            assert not stopping.done()
            smtp.release.set()
            await stopping
        (mail,) = smtp.messages
        assert (mail["To"], mail["Subject"]) == ("grace@example.com", "Reset your password")
        mailed_token(mail)


async def test_reset_password_ends_sessions_and_changes_the_password(site: Site) -> None:
    address = "heidi@example.com"
    await site.add_user(address)
    old = await site.login(address)
    forgot = await site.call("POST", "/api/v1/auth/forgot-password", body={"email": address})
    assert forgot.status == 202
    await site.settle()
    token = mailed_token(site.mails(address)[-1])

    short = await site.call(
        "POST", "/api/v1/auth/reset-password", body={"token": token, "password": "short"}
    )
    assert_problem(short, 400, "invalid_request")
    reset = await site.call(
        "POST", "/api/v1/auth/reset-password", body={"token": token, "password": NEW_PASSWORD}
    )
    assert reset.status == 200, reset.body

    assert_problem(await site.call("GET", NOTES, token=old["access_token"]), 401, "token_revoked")
    assert_problem(await site.call("GET", ME, token=old["access_token"]), 401, "token_revoked")
    assert_problem(await site.refresh(old["refresh_token"]), 401, "invalid_token")
    refused = await site.call("POST", LOGIN, body={"email": address, "password": PASSWORD})
    assert_problem(refused, 401, "invalid_credentials")
    fresh = await site.login(address, NEW_PASSWORD)
    assert (await site.call("GET", NOTES, token=fresh["access_token"])).status == 200

    again = await site.call(
        "POST", "/api/v1/auth/reset-password", body={"token": token, "password": PASSWORD}
    )
    assert_problem(again, 401, "invalid_token")


@pytest.mark.parametrize("used", [0, 1], ids=["older-token-used", "newer-token-used"])
async def test_a_password_reset_voids_every_other_reset_token(site: Site, used: int) -> None:
    address = "olivia@example.com"
    await site.add_user(address)
    for _ in range(2):
        forgot = await site.call("POST", "/api/v1/auth/forgot-password", body={"email": address})
        assert forgot.status == 202
    await site.settle()
    tokens = [mailed_token(mail) for mail in site.mails(address)]
    assert len(tokens) == 2
    reset = await site.call(
        "POST",
        "/api/v1/auth/reset-password",
        body={"token": tokens[used], "password": NEW_PASSWORD},
    )
    assert reset.status == 200, reset.body
    other = tokens[1 - used]
    stale = await site.call(
        "POST", "/api/v1/auth/reset-password", body={"token": other, "password": PASSWORD}
    )
    assert_problem(stale, 401, "invalid_token")
    # The password is the one the reset set, not the one the stale token tried.
    refused = await site.call("POST", LOGIN, body={"email": address, "password": PASSWORD})
    assert_problem(refused, 401, "invalid_credentials")
    await site.login(address, NEW_PASSWORD)


async def test_an_address_change_voids_the_tokens_mailed_to_the_old_address(site: Site) -> None:
    # Whoever reads the old mailbox must not confirm the new address (upstreams would be told
    # X-User-Email-Verified: true for an address nobody proved) nor reset the account.
    await site.add_user("root@example.com", roles=("admin",))
    admin = (await site.login("root@example.com"))["access_token"]
    old, new = "old-box@example.com", "new-box@example.com"
    signup = await site.call(
        "POST", "/api/v1/auth/signup", body={"email": old, "password": PASSWORD}
    )
    assert signup.status == 201, signup.body
    forgot = await site.call("POST", "/api/v1/auth/forgot-password", body={"email": old})
    assert forgot.status == 202
    await site.settle()
    # Both mails are sent in the background, so they may land in either order.
    by_subject = {mail["Subject"]: mail for mail in site.mails(old)}
    assert sorted(by_subject) == ["Confirm your e-mail address", "Reset your password"]
    verify_mail = by_subject["Confirm your e-mail address"]
    reset_mail = by_subject["Reset your password"]
    path = f"/api/v1/users/{signup.json()['user']['id']}"
    changed = await site.call("PATCH", path, token=admin, body={"email": new})
    assert (changed.status, changed.json()["user"]["email"]) == (200, new), changed.body

    confirm = await site.call(
        "POST", "/api/v1/auth/verify-email", body={"token": mailed_token(verify_mail)}
    )
    assert_problem(confirm, 401, "invalid_token")
    reset = await site.call(
        "POST",
        "/api/v1/auth/reset-password",
        body={"token": mailed_token(reset_mail), "password": NEW_PASSWORD},
    )
    assert_problem(reset, 401, "invalid_token")
    fetched = await site.call("GET", path, token=admin)
    assert fetched.json()["user"]["email_verified"] is False
    await site.login(new, PASSWORD)


async def test_reset_password_lets_a_held_back_client_log_in_at_once(site: Site) -> None:
    address = "peggy@example.com"
    await site.add_user(address)
    await lock_out(site, address)
    held = await site.call("POST", LOGIN, body={"email": address, "password": PASSWORD})
    assert_problem(held, 429, "rate_limited")
    await site.call("POST", "/api/v1/auth/forgot-password", body={"email": address})
    await site.settle()
    token = mailed_token(site.mails(address)[-1])
    reset = await site.call(
        "POST", "/api/v1/auth/reset-password", body={"token": token, "password": NEW_PASSWORD}
    )
    assert reset.status == 200, reset.body
    await site.login(address, NEW_PASSWORD)


MAIL_FLOWS = [
    # (id, endpoint, body, subject)
    (
        "verification mail",
        "/api/v1/auth/signup",
        {"email": "quinn@example.com", "password": PASSWORD},
        "Confirm your e-mail address",
    ),
    (
        "password reset mail",
        "/api/v1/auth/forgot-password",
        {"email": "root@example.com"},
        "Reset your password",
    ),
]


@pytest.mark.parametrize(("path", "body", "subject"), cases(MAIL_FLOWS))
async def test_mails_do_not_name_the_clients_host(
    site: Site, path: str, body: dict[str, str], subject: str
) -> None:
    await site.add_user("root@example.com")
    answer = await site.call("POST", path, body=body, headers={"Host": "evil.example.com"})
    assert answer.status in (201, 202), answer.body
    await site.settle()
    (mail,) = site.mails(body["email"])
    assert mail["Subject"] == subject
    mailed_token(mail)
    assert "evil.example.com" not in mail.get_content()


# -- administration ----------------------------------------------------------------------------


async def test_admin_manages_users(site: Site) -> None:
    await site.add_user("root@example.com", roles=("admin",))
    admin = (await site.login("root@example.com"))["access_token"]

    created = await site.call(
        "POST",
        "/api/v1/users",
        token=admin,
        body={"email": "ivan@example.com", "password": PASSWORD, "name": "Ivan"},
    )
    assert created.status == 201, created.body
    user = created.json()["user"]
    assert (user["email"], user["name"], user["roles"]) == ("ivan@example.com", "Ivan", ["user"])
    duplicate = await site.call(
        "POST", "/api/v1/users", token=admin, body={"email": "IVAN@example.com"}
    )
    assert_problem(duplicate, 409, "conflict")

    listed = await site.call("GET", "/api/v1/users", token=admin)
    assert listed.status == 200, listed.body
    assert {entry["email"] for entry in listed.json()["users"]} == {
        "root@example.com",
        "ivan@example.com",
    }
    path = f"/api/v1/users/{user['id']}"
    fetched = await site.call("GET", path, token=admin)
    assert (fetched.status, fetched.json()["user"]) == (200, user)
    assert_problem(
        await site.call("GET", "/api/v1/users/usr_nobody", token=admin), 404, "not_found"
    )

    ivan = await site.login("ivan@example.com")
    renamed = await site.call("PATCH", path, token=admin, body={"name": "Ivan B."})
    assert (renamed.status, renamed.json()["user"]["name"]) == (200, "Ivan B.")
    # A new name leaves the sessions alone ...
    assert (await site.call("GET", NOTES, token=ivan["access_token"])).status == 200
    refused = await site.call("PATCH", path, token=admin, body={"password_hash": "x"})
    assert_problem(refused, 400, "invalid_request")

    # ... a role change ends them: the roles are carried in the access tokens.
    promoted = await site.call("PATCH", path, token=admin, body={"roles": ["user", "editor"]})
    assert (promoted.status, promoted.json()["user"]["roles"]) == (200, ["user", "editor"])
    assert_problem(await site.call("GET", NOTES, token=ivan["access_token"]), 401, "token_revoked")
    assert_problem(await site.refresh(ivan["refresh_token"]), 401, "invalid_token")
    again = await site.login("ivan@example.com")
    assert (await site.call("GET", NOTES, token=again["access_token"])).status == 200
    assert received_headers(site.upstream.seen[-1])["x-user-roles"] == ["user,editor"]

    # Disabling ends the sessions too and refuses logins; enabling lets the user back in.
    disabled = await site.call("PATCH", path, token=admin, body={"disabled": True})
    assert (disabled.status, disabled.json()["user"]["disabled"]) == (200, True)
    assert_problem(await site.call("GET", NOTES, token=again["access_token"]), 401, "token_revoked")
    refused = await site.call(
        "POST", LOGIN, body={"email": "ivan@example.com", "password": PASSWORD}
    )
    assert_problem(refused, 401, "invalid_credentials")
    enabled = await site.call("PATCH", path, token=admin, body={"disabled": False})
    assert (enabled.status, enabled.json()["user"]["disabled"]) == (200, False)
    again = await site.login("ivan@example.com")

    deleted = await site.call("DELETE", path, token=admin)
    assert (deleted.status, deleted.body) == (204, b"")
    assert_problem(await site.call("GET", path, token=admin), 404, "not_found")
    assert_problem(await site.call("GET", NOTES, token=again["access_token"]), 401, "token_revoked")
    refused = await site.call(
        "POST", LOGIN, body={"email": "ivan@example.com", "password": PASSWORD}
    )
    assert_problem(refused, 401, "invalid_credentials")


async def test_the_last_admin_cannot_remove_itself(site: Site) -> None:
    root_id = await site.add_user("root@example.com", roles=("admin",))
    admin = (await site.login("root@example.com"))["access_token"]
    path = f"/api/v1/users/{root_id}"
    before = (await site.call("GET", path, token=admin)).json()["user"]
    for method, body in (
        ("PATCH", {"roles": ["user"]}),
        ("PATCH", {"disabled": True}),
        ("PATCH", {"roles": [], "name": "Root"}),
        ("DELETE", None),
    ):
        answer = await site.call(method, path, token=admin, body=body)
        assert_problem(answer, 409, "last_admin")
        assert "admin" in answer.json()["detail"]
    # Nothing changed and the admin's session lives on.
    after = await site.call("GET", path, token=admin)
    assert (after.status, after.json()["user"]) == (200, before)

    # With a second enabled admin, the first may step down; the second is then the last.
    other = await site.call(
        "POST",
        "/api/v1/users",
        token=admin,
        body={"email": "sysop@example.com", "password": PASSWORD, "roles": ["admin"]},
    )
    assert other.status == 201, other.body
    other_id = other.json()["user"]["id"]
    sysop = (await site.login("sysop@example.com"))["access_token"]
    stepped_down = await site.call("PATCH", path, token=admin, body={"roles": ["user"]})
    assert (stepped_down.status, stepped_down.json()["user"]["roles"]) == (200, ["user"])
    refused = await site.call("DELETE", f"/api/v1/users/{other_id}", token=sysop)
    assert_problem(refused, 409, "last_admin")
    assert (await site.call("DELETE", path, token=sysop)).status == 204


async def test_admin_revokes_every_session_of_a_user(site: Site) -> None:
    await site.add_user("root@example.com", roles=("admin",))
    admin = (await site.login("root@example.com"))["access_token"]
    judy_id = await site.add_user("judy@example.com")
    laptop = await site.login("judy@example.com")
    phone = await site.login("judy@example.com")

    answer = await site.call("POST", f"/api/v1/users/{judy_id}/revoke-sessions", token=admin)
    assert answer.status == 200, answer.body
    assert answer.json() == {"sessions_ended": 2}
    for pair in (laptop, phone):
        assert_problem(
            await site.call("GET", NOTES, token=pair["access_token"]), 401, "token_revoked"
        )
        assert_problem(await site.refresh(pair["refresh_token"]), 401, "invalid_token")
    # The admin's own session is untouched, and the user may log in again.
    assert (await site.call("GET", "/api/v1/users", token=admin)).status == 200
    fresh = await site.login("judy@example.com")
    assert (await site.call("GET", NOTES, token=fresh["access_token"])).status == 200


ADMIN_CALLS = [
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"),
    ("PATCH", "/api/v1/users/{id}"),
    ("DELETE", "/api/v1/users/{id}"),
    ("POST", "/api/v1/users/{id}/revoke-sessions"),
    ("GET", "/api/v1/audit"),
]
TABLES = [
    ("shipped routes", AUTH_CORE_ROUTES),
    ("admin routes left at auth none", MISCONFIGURED_ROUTES),
]


@pytest.mark.parametrize("auth_core_routes", [t[1] for t in TABLES], ids=[t[0] for t in TABLES])
@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS, ids=[f"{m} {p}" for m, p in ADMIN_CALLS])
async def test_admin_api_refuses_plain_users(
    site_with: OpenSite, auth_core_routes: tuple[str, ...], method: str, path: str
) -> None:
    async with site_with(auth_core_routes) as site:
        user_id = await site.add_user("kim@example.com")
        token = (await site.login("kim@example.com"))["access_token"]
        target = path.replace("{id}", user_id)
        body = {"email": "new@example.com"} if method in ("POST", "PATCH") else None
        answer = await site.call(method, target, token=token, body=body)
        assert_problem(answer, 403, "insufficient_role")
        anonymous = await site.call(method, target, body=body)
        assert_problem(anonymous, 401, "missing_credentials")
        # Nothing happened.
        user = await site.core.accounts.get(user_id)
        assert user.email == "kim@example.com"
        assert (await site.call("GET", NOTES, token=token)).status == 200


async def test_audit_log_carries_the_request_ids(site: Site) -> None:
    admin_id = await site.add_user("root@example.com", roles=("admin",))
    admin_login = await site.call(
        "POST", LOGIN, body={"email": "root@example.com", "password": PASSWORD}
    )
    admin = admin_login.json()["access_token"]
    create = await site.call(
        "POST",
        "/api/v1/users",
        token=admin,
        body={"email": "leo@example.com", "password": PASSWORD},
    )
    leo_id = create.json()["user"]["id"]
    failure = await site.call(
        "POST", LOGIN, body={"email": "leo@example.com", "password": "not the password"}
    )
    login = await site.call("POST", LOGIN, body={"email": "leo@example.com", "password": PASSWORD})
    first = login.json()
    refresh = await site.refresh(first["refresh_token"])
    reuse = await site.refresh(first["refresh_token"])
    second = await site.login("leo@example.com")
    logout = await site.call("POST", LOGOUT, token=second["access_token"])
    path = f"/api/v1/users/{leo_id}"
    update = await site.call("PATCH", path, token=admin, body={"roles": ["user", "auditor"]})
    revoke = await site.call("POST", f"{path}/revoke-sessions", token=admin)
    delete = await site.call("DELETE", path, token=admin)
    steps = [
        # (id, answer, expected status, event, outcome, user, actor)
        ("admin login", admin_login, 200, "login", "success", admin_id, None),
        ("admin creates a user", create, 201, "user_create", "success", leo_id, admin_id),
        ("failed login", failure, 401, "login", "failure", leo_id, None),
        ("login", login, 200, "login", "success", leo_id, None),
        ("refresh", refresh, 200, "refresh", "success", leo_id, None),
        ("refresh token reused", reuse, 401, "refresh", "reuse_detected", None, None),
        ("logout", logout, 204, "logout", "success", leo_id, None),
        ("admin changes roles", update, 200, "user_update", "success", leo_id, admin_id),
        ("admin ends sessions", revoke, 200, "sessions_revoke", "success", leo_id, admin_id),
        ("admin deletes the user", delete, 204, "user_delete", "success", leo_id, admin_id),
    ]

    audit = await site.call("GET", "/api/v1/audit?limit=500", token=admin)
    assert audit.status == 200, audit.body
    entries = audit.json()["entries"]
    by_request: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_request.setdefault(entry["request_id"], []).append(entry)
    for case, answer, status, event, outcome, user_id, actor_id in steps:
        assert answer.status == status, (case, answer.body)
        found = [
            entry
            for entry in by_request.get(answer.request_id, [])
            if (entry["event"], entry["outcome"]) == (event, outcome)
        ]
        assert len(found) == 1, (case, by_request.get(answer.request_id))
        if user_id is not None:
            assert found[0]["user_id"] == user_id, case
        if actor_id is not None:
            assert found[0]["actor_id"] == actor_id, case
        assert found[0]["ip"] == "127.0.0.1", case
    assert [entry["id"] for entry in entries] == sorted(
        (entry["id"] for entry in entries), reverse=True
    )

    assert PASSWORD not in audit.body.decode()
    assert "not the password" not in audit.body.decode()

    logins = await site.call("GET", "/api/v1/audit?event=login", token=admin)
    assert {entry["event"] for entry in logins.json()["entries"]} == {"login"}
    mine = await site.call("GET", f"/api/v1/audit?user_id={admin_id}", token=admin)
    assert all(
        admin_id in (entry["user_id"], entry["actor_id"]) for entry in mine.json()["entries"]
    )


DENIALS = [
    # (id, path, role, Origin, revoke first, status, code)
    ("insufficient role", ADMIN_ONLY, None, False, 403, "insufficient_role"),
    ("origin not allowed", NOTES, "https://evil.example.com", False, 403, "origin_not_allowed"),
    ("revoked token", NOTES, None, True, 401, "token_revoked"),
]


@pytest.mark.parametrize(("path", "origin", "revoke", "status", "code"), cases(DENIALS))
async def test_gateway_denials_are_audited_with_the_request_id(
    site: Site, path: str, origin: str | None, revoke: bool, status: int, code: str
) -> None:
    await site.add_user("root@example.com", roles=("admin",))
    admin = (await site.login("root@example.com"))["access_token"]
    user_id = await site.add_user("rita@example.com")
    token = (await site.login("rita@example.com"))["access_token"]
    if revoke:
        ended = await site.call("POST", f"/api/v1/users/{user_id}/revoke-sessions", token=admin)
        assert ended.status == 200
    headers = {"Origin": origin} if origin else {}
    denied = await site.call("GET", path, token=token, headers=headers)
    assert_problem(denied, status, code)
    await site.settle()  # refusals are audited off the answer's path
    audit = await site.call("GET", "/api/v1/audit?limit=500", token=admin)
    request_ids = {entry["request_id"] for entry in audit.json()["entries"]}
    assert denied.request_id in request_ids


# -- users imported from another system --------------------------------------------------------


def keyring_text(keyring: Keyring | None) -> str:
    assert keyring is not None
    return ",".join(f"{kid}:{secret.decode()}" for kid, secret in keyring.keys)


async def stored_password_hash(database_url: str, address: str) -> str:
    """The password hash in the users table, read with the database's own client."""
    if database_url.startswith("sqlite:"):

        def read() -> str:
            path = database_url[len("sqlite:///") :]
            with contextlib.closing(sqlite3.connect(path)) as connection:
                row = connection.execute(
                    "SELECT password_hash FROM users WHERE email = ?", (address,)
                ).fetchone()
            return str(row[0])

        return await asyncio.to_thread(read)
    connection = await asyncpg.connect(database_url, timeout=30)
    try:
        return str(
            await connection.fetchval("SELECT password_hash FROM users WHERE email = $1", address)
        )
    finally:
        await connection.close()


async def test_imported_bcrypt_user_logs_in_and_is_rehashed(site: Site) -> None:
    address = "mike@example.com"
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    csv_file = site.directory / "users.csv"
    csv_file.write_text(f"email,password_hash,roles\n{address},{legacy},user;editor\n")
    tokens = site.core.tokens
    assert tokens is not None
    environment = {
        **os.environ,
        "GATEWAY_DATABASE_URL": site.database_url,
        "GATEWAY_PASSWORD_HASH_COST": "1,8192,1",
        "GATEWAY_MAIL_URL": f"outbox:{site.directory}/outbox",
        "GATEWAY_JWT_SECRET": keyring_text(tokens.keyring),
        "GATEWAY_SERVICE_SECRET": keyring_text(site.core.service_keyring),
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "users", "import", str(csv_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=site.directory,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "imported 1 users\n"
    assert await stored_password_hash(site.database_url, address) == legacy

    wrong = await site.call("POST", LOGIN, body={"email": address, "password": "not it at all"})
    assert_problem(wrong, 401, "invalid_credentials")
    pair = await site.login(address)
    assert pair["user"]["roles"] == ["user", "editor"]
    assert (await site.call("GET", NOTES, token=pair["access_token"])).status == 200
    rehashed = await stored_password_hash(site.database_url, address)
    assert rehashed.startswith("$argon2id$")
    # The new hash is the one in use from now on.
    await site.login(address)
    assert await stored_password_hash(site.database_url, address) == rehashed
