"""Tenants, their API keys and IP/origin whitelists, SDK sessions, personal access tokens and
service tokens, through a running gateway, on SQLite and on PostgreSQL (docs/routes.md, The auth
core, Errors).

An admin creates a tenant and a key (shown once); the tenant's SDK backend opens sessions for
its end users from a whitelisted address (and is refused from another one); the browsers of
those users are held to the tenant's origins, CORS preflights included; keys rotate with a
grace period; malformed keys are refused without the database; the client address is the one
trusted-proxy resolver's (IPv4-mapped IPv6 included, forged X-Forwarded-For ignored); PATs live
and die; a tenant's admins see their tenant and nothing else; internal services use the
service token; the audit log shows it all; forwardAuth takes an API key.

The gateway serves the shipped routes.yaml, its `echo` upstream pointed at a real echo server
that reports the headers it received. Every connection is to 127.0.0.1; the "other" client
address is 127.0.0.2 (a loopback address, bound as the source of the connection); addresses
outside loopback appear only as X-Forwarded-For header values.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netaddr
import pytest
from aiohttp import ClientSession, ClientTimeout, TCPConnector
from multidict import CIMultiDict
from prometheus_client.parser import text_string_to_metric_families

from auth_core import credentials
from auth_core.service import AuthCore, CallInfo
from auth_core.tokens import Keyring
from gateway.context import Context, derive_keys, verify
from tests.support import (
    LOOPBACK,
    Answer,
    RunningGateway,
    Upstream,
    assert_problem,
    auth_settings,
    cases,
    fetch,
    quiet_settings,
    received_headers,
    running_gateway,
    two_gateways,
)

PASSWORD = "correct horse battery"
TIMEOUT = ClientTimeout(total=60)
OTHER_ADDRESS = "127.0.0.2"  # a second loopback address: "a client somewhere else"
SHIPPED_ROUTES = Path(__file__).resolve().parents[2] / "routes.yaml"
SHIPPED_ECHO = '"http://127.0.0.1:9001"'

ORIGIN = "https://app.example.com"
EVIL_ORIGIN = "https://evil.example.com"
SUFFIX_ORIGIN = "https://app.example.com.evil.com"
NEW_ORIGIN = "https://new.example.com"
PLATFORM_ORIGIN = "http://127.0.0.1:8080"  # the shipped table's top-level origins

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
TENANTS = "/api/v1/tenants"
TOKENS = "/api/v1/tokens"
AUDIT = "/api/v1/audit"
SDK_SESSION = "/v1/sdk/session"
INTERNAL_VALIDATE = "/api/v1/auth/internal/validate"
INTERNAL_VALIDATE_KEY = "/api/v1/auth/internal/validate-api-key"
FORWARD_AUTH = "/api/v1/auth/validate"
# Routes of the shipped table to the echo upstream (strip_prefix: the upstream sees the rest).
PRIVATE = "/private"  # auth: jwt
PARTNER = "/partner"  # auth: api_key
DEVELOPER = "/dev"  # auth: pat
INTERNAL = "/internal"  # auth: service
ANYONE = "/any"  # auth: any

KEY_FORMAT = re.compile(r"gwk_[0-9A-Za-z]{38}")
PAT_FORMAT = re.compile(r"gwp_[0-9A-Za-z]{38}")


def shipped_routes(upstream: Upstream) -> str:
    """The repository's routes.yaml with its echo upstream pointed at `upstream`."""
    text = SHIPPED_ROUTES.read_text()
    assert text.count(SHIPPED_ECHO) == 1, "the shipped echo upstream moved: update this test"
    return text.replace(SHIPPED_ECHO, json.dumps(upstream.url))


# -- the site under test -----------------------------------------------------------------------


@dataclass
class Site:
    """A running gateway on the shipped routes, its echo upstream, and two clients: one
    connecting from 127.0.0.1, one from 127.0.0.2."""

    gateway: RunningGateway
    upstream: Upstream
    client: ClientSession
    elsewhere: ClientSession
    base_url: str = ""  # where to connect, when not the gateway's 127.0.0.1 address
    service_token_secret: str = ""

    @property
    def url(self) -> str:
        return self.base_url or self.gateway.url

    @property
    def core(self) -> AuthCore:
        return self.gateway.core

    def context_keys(self, audience: str) -> dict[str, bytes]:
        """What `gateway context-key AUDIENCE` gives the service behind that upstream."""
        keyring = self.core.service_keyring
        assert keyring is not None
        return derive_keys(keyring.keys, audience)

    async def service_token(self) -> str:
        """A service token (`gws_...`) of this site's, made once through the auth core."""
        if not self.service_token_secret:
            _, self.service_token_secret = await self.core.service_tokens.create(
                "tests", actor_id=None, call=CallInfo()
            )
        return self.service_token_secret

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        key: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        source: str = LOOPBACK,
    ) -> Answer:
        """`token` goes in `Authorization: Bearer`, `key` in `X-API-Key`, `body` as JSON;
        `source` is the address the connection comes from (127.0.0.1 or 127.0.0.2)."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if key is not None:
            sent["X-API-Key"] = key
        client = {LOOPBACK: self.client, OTHER_ADDRESS: self.elsewhere}[source]
        return await fetch(
            client, method, self.url + path, json=body, headers=sent, timeout=TIMEOUT
        )

    async def add_user(
        self,
        address: str,
        *,
        roles: tuple[str, ...] = ("user",),
        tenant_id: str | None = None,
    ) -> str:
        user = await self.core.accounts.create(
            address, PASSWORD, roles=roles, verified=True, tenant_id=tenant_id
        )
        return user.id

    async def login(self, address: str) -> dict[str, Any]:
        answer = await self.call("POST", LOGIN, body={"email": address, "password": PASSWORD})
        assert answer.status == 200, answer.body
        pair: dict[str, Any] = answer.json()
        return pair

    async def admin(self, address: str = "root@example.com") -> str:
        """A platform admin's access token."""
        await self.add_user(address, roles=("user", "admin"))
        return str((await self.login(address))["access_token"])

    async def create_tenant(
        self,
        admin: str,
        name: str = "Acme",
        *,
        origins: Iterable[str] = (ORIGIN,),
        ip_whitelist: Iterable[str] = ("127.0.0.1/32",),
    ) -> dict[str, Any]:
        answer = await self.call(
            "POST",
            TENANTS,
            token=admin,
            body={"name": name, "origins": list(origins), "ip_whitelist": list(ip_whitelist)},
        )
        assert answer.status == 201, answer.body
        tenant: dict[str, Any] = answer.json()
        return tenant

    async def create_key(
        self, token: str, tenant_id: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        answer = await self.call(
            "POST", f"{TENANTS}/{tenant_id}/api-keys", token=token, body=body or {}
        )
        assert answer.status == 201, answer.body
        key: dict[str, Any] = answer.json()
        return key

    async def tenant_with_key(
        self, admin: str, name: str = "Acme", **tenant: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        created = await self.create_tenant(admin, name, **tenant)
        return created, await self.create_key(admin, created["id"], {"name": "backend"})

    async def sdk_session(
        self, key: str, external_user_id: str = "cust-1", *, source: str = LOOPBACK
    ) -> Answer:
        return await self.call(
            "POST",
            SDK_SESSION,
            key=key,
            body={"external_user_id": external_user_id, "email": "end@customer.example"},
            source=source,
        )

    async def service(self, path: str, body: Any, secret: str | None = None) -> Answer:
        """An internal service's call: `Authorization: Service <service token>`."""
        return await self.call(
            "POST",
            path,
            body=body,
            headers={"Authorization": f"Service {secret or await self.service_token()}"},
        )

    async def audit(self, admin: str) -> list[dict[str, Any]]:
        answer = await self.call("GET", f"{AUDIT}?limit=500", token=admin)
        assert answer.status == 200, answer.body
        entries: list[dict[str, Any]] = answer.json()["entries"]
        return entries

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        answer = await self.call("GET", "/metrics")
        assert answer.status == 200, answer.body
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.body.decode())
            for sample in family.samples
        }


@asynccontextmanager
async def open_site(
    directory: Path,
    database_url: str,
    upstream: Upstream,
    client: ClientSession,
    elsewhere: ClientSession,
    *,
    trusted_proxies: Iterable[str] = (),
    **auth: Any,
) -> AsyncIterator[Site]:
    settings = quiet_settings(
        trusted_proxies=netaddr.IPSet(list(trusted_proxies)),
        auth=auth_settings(directory, database_url=database_url, **auth),
    )
    async with running_gateway(shipped_routes(upstream), directory, settings) as gateway:
        yield Site(gateway, upstream, client, elsewhere)


@pytest.fixture
async def elsewhere() -> AsyncIterator[ClientSession]:
    """A client whose connections come from 127.0.0.2."""
    connector = TCPConnector(local_addr=(OTHER_ADDRESS, 0))
    async with ClientSession(connector=connector, auto_decompress=False) as session:
        yield session


OpenSite = Callable[..., AbstractAsyncContextManager[Site]]


@pytest.fixture
def site_with(
    tmp_path: Path,
    database_url: str,
    upstream: Upstream,
    client: ClientSession,
    elsewhere: ClientSession,
) -> OpenSite:
    """The site with a test's own settings, as `open_site` takes them (auth settings too):
    `async with site_with(trusted_proxies=["127.0.0.1/32"]) as site`."""
    return functools.partial(open_site, tmp_path, database_url, upstream, client, elsewhere)


@pytest.fixture
async def site(site_with: OpenSite) -> AsyncIterator[Site]:
    async with site_with() as running:
        yield running


# -- checks ------------------------------------------------------------------------------------


def signed_context(site: Site, seen: dict[str, Any]) -> Context:
    """The context the upstream received, its signature checked (every header, so that a
    signed header arriving twice is refused too)."""
    headers = CIMultiDict[str]([(name, value) for name, value in seen["headers"]])
    return verify(site.context_keys("echo"), "echo", seen["method"], seen["path"], headers)


async def forwarded(site: Site, path: str, **call: Any) -> tuple[Answer, dict[str, Any]]:
    """A request that must reach the echo upstream, and what the upstream saw of it."""
    before = len(site.upstream.seen)
    answer = await site.call("GET", path, **call)
    assert answer.status == 200, answer.body
    assert len(site.upstream.seen) == before + 1
    return answer, site.upstream.seen[-1]


async def refused(site: Site, path: str, status: int, code: str, **call: Any) -> Answer:
    """A request the gateway must refuse without reaching the upstream."""
    before = len(site.upstream.seen)
    answer = await site.call("GET", path, **call)
    assert_problem(answer, status, code)
    assert len(site.upstream.seen) == before, "the upstream was reached"
    return answer


async def eventually(check: Callable[[], Awaitable[bool]], what: str, limit: float = 30.0) -> None:
    """Poll `check` until it holds; fail after `limit` seconds (a bound, not a measurement)."""
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.1)


async def until_refused(site: Site, path: str, what: str, **credential: str) -> None:
    """Poll `path` with the credential until the gateway refuses it (401), as it must once the
    credential runs out; it may be served (200) until then, and nothing else."""

    async def refused_now() -> bool:
        answer = await site.call("GET", path, **credential)
        assert answer.status in (200, 401), answer.body
        return answer.status == 401

    await eventually(refused_now, what)


def other_checksum(key: str) -> str:
    """`key` with a wrong checksum (its last character changed)."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


# -- 1. tenants and keys -----------------------------------------------------------------------


async def test_admin_creates_a_tenant_and_a_key_shown_once(site: Site) -> None:
    admin = await site.admin()
    created = await site.call(
        "POST",
        TENANTS,
        token=admin,
        body={"name": "Acme", "ip_whitelist": ["127.0.0.1/32"], "origins": [ORIGIN]},
    )
    assert created.status == 201, created.body
    tenant = created.json()
    tenant_id = tenant["id"]
    assert (tenant["name"], tenant["origins"], tenant["ip_whitelist"]) == (
        "Acme",
        [ORIGIN],
        ["127.0.0.1/32"],
    )
    fetched = await site.call("GET", f"{TENANTS}/{tenant_id}", token=admin)
    assert (fetched.status, fetched.json()["id"]) == (200, tenant_id)
    listed_tenants = await site.call("GET", TENANTS, token=admin)
    assert [t["id"] for t in listed_tenants.json()["tenants"]] == [tenant_id]

    answer = await site.call(
        "POST", f"{TENANTS}/{tenant_id}/api-keys", token=admin, body={"name": "backend"}
    )
    assert answer.status == 201, answer.body
    assert answer.headers["Cache-Control"] == "no-store"
    key = answer.json()
    secret = key["key"]
    assert KEY_FORMAT.fullmatch(secret), secret
    assert (key["tenant_id"], key["name"]) == (tenant_id, "backend")
    assert secret.startswith(key["prefix"])
    assert len(key["prefix"]) < len(secret) // 2

    listed = await site.call("GET", f"{TENANTS}/{tenant_id}/api-keys", token=admin)
    assert listed.status == 200, listed.body
    (entry,) = listed.json()["api_keys"]
    assert entry["id"] == key["id"]
    assert entry["prefix"] == key["prefix"]
    assert "key" not in entry
    # Neither the secret nor its stored hash is ever listed.
    assert secret not in listed.body.decode()
    assert credentials.credential_hash(secret) not in listed.body.decode()
    # A key for a tenant that does not exist is not made.
    missing = await site.call("POST", f"{TENANTS}/ten_nobody/api-keys", token=admin, body={})
    assert_problem(missing, 404, "not_found")


# -- 2. the SDK backend ------------------------------------------------------------------------


async def test_sdk_backend_opens_sessions_from_a_whitelisted_address(site: Site) -> None:
    admin = await site.admin()
    tenant, key = await site.tenant_with_key(admin)
    secret = key["key"]

    opened = await site.sdk_session(secret, "cust-1")
    assert opened.status == 200, opened.body
    assert opened.headers["Cache-Control"] == "no-store"
    pair = opened.json()
    assert pair["token_type"] == "Bearer"
    assert pair["access_token"]
    assert pair["refresh_token"]
    user = pair["user"]
    assert user["tenant_id"] == tenant["id"]
    assert user["roles"] == ["user"]
    # The same external user is found again, not created twice.
    again = await site.sdk_session(secret, "cust-1")
    assert again.status == 200, again.body
    assert again.json()["user"]["id"] == user["id"]
    # The token pair is bound to the tenant: the upstream is told so.
    _, seen = await forwarded(site, f"{PRIVATE}/profile", token=pair["access_token"])
    context = signed_context(site, seen)
    assert (context.auth_method, context.user_id, context.tenant_id) == (
        "jwt",
        user["id"],
        tenant["id"],
    )

    # The same call from an address the tenant's whitelist does not hold.
    elsewhere = await site.sdk_session(secret, "cust-2", source=OTHER_ADDRESS)
    assert_problem(elsewhere, 403, "ip_not_allowed")

    # The key on an `auth: api_key` route: signed context headers, spoofed ones dropped.
    spoofed = {"X-Tenant-Id": "ten_forged", "X-Auth-Method": "jwt", "X-User-Id": "usr_forged"}
    answer, seen = await forwarded(site, f"{PARTNER}/orders?page=2", key=secret, headers=spoofed)
    assert seen["path"] == "/orders?page=2"
    headers = received_headers(seen)
    assert headers["x-auth-method"] == ["api_key"]
    assert headers["x-tenant-id"] == [tenant["id"]]
    assert headers["x-credential-id"] == [key["id"]]
    assert headers["x-request-id"] == [answer.request_id]
    assert "x-user-id" not in headers
    assert "x-api-key" not in headers or headers["x-api-key"] == [secret]
    context = signed_context(site, seen)
    assert (context.auth_method, context.tenant_id, context.credential_id) == (
        "api_key",
        tenant["id"],
        key["id"],
    )
    assert context.user_id is None
    # `Authorization: Bearer gwk_...` is the same key.
    _, seen = await forwarded(
        site, f"{PARTNER}/orders", headers={"Authorization": f"Bearer {secret}"}
    )
    assert received_headers(seen)["x-credential-id"] == [key["id"]]
    # `auth: any` takes the key too.
    _, seen = await forwarded(site, f"{ANYONE}/x", key=secret)
    assert received_headers(seen)["x-auth-method"] == ["api_key"]

    await refused(
        site, f"{PARTNER}/orders", 403, "ip_not_allowed", key=secret, source=OTHER_ADDRESS
    )
    await refused(site, f"{ANYONE}/x", 403, "ip_not_allowed", key=secret, source=OTHER_ADDRESS)
    await refused(site, f"{PARTNER}/orders", 401, "missing_credentials")
    await refused(site, f"{PARTNER}/orders", 401, "invalid_api_key", key=other_checksum(secret))

    samples = await site.metrics()
    assert samples[("gateway_ip_whitelist_rejections_total", ())] >= 3
    results = {
        dict(labels)["result"]: value
        for (name, labels), value in samples.items()
        if name == "gateway_api_key_validations_total"
    }
    assert results.get("ip_not_allowed", 0) >= 3, results
    assert results.get("invalid_api_key", 0) >= 1, results
    assert results.get("ok", 0) >= 4, results


async def test_sdk_refresh_and_logout_stay_within_the_tenant(site: Site) -> None:
    admin = await site.admin()
    _, key = await site.tenant_with_key(admin, "Acme")
    _, other_key = await site.tenant_with_key(admin, "Globex")
    pair = (await site.sdk_session(key["key"], "cust-1")).json()

    # Another tenant's backend cannot refresh (or end) this tenant's user's session.
    foreign = await site.call(
        "POST",
        "/v1/sdk/refresh",
        key=other_key["key"],
        body={"refresh_token": pair["refresh_token"]},
    )
    assert_problem(foreign, 401, "invalid_token")
    # ... and the attempt did not spend the token: its own tenant's backend still can.
    renewed = await site.call(
        "POST", "/v1/sdk/refresh", key=key["key"], body={"refresh_token": pair["refresh_token"]}
    )
    assert renewed.status == 200, renewed.body
    fresh = renewed.json()
    assert fresh["session_id"] == pair["session_id"]
    await forwarded(site, f"{PRIVATE}/x", token=fresh["access_token"])

    ended = await site.call(
        "POST", "/v1/sdk/logout", key=key["key"], body={"refresh_token": fresh["refresh_token"]}
    )
    assert (ended.status, ended.body) == (204, b"")
    await refused(site, f"{PRIVATE}/x", 401, "token_revoked", token=fresh["access_token"])


# -- 3. the browser --------------------------------------------------------------------------


async def test_browser_is_held_to_the_tenant_origins(site: Site) -> None:
    admin = await site.admin()
    tenant, key = await site.tenant_with_key(admin, "Acme")
    await site.create_tenant(admin, "Globex", origins=["https://globex.example.com"])
    access = (await site.sdk_session(key["key"])).json()["access_token"]

    answer, seen = await forwarded(
        site, f"{PRIVATE}/feed", token=access, headers={"Origin": ORIGIN}
    )
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "origin" in answer.headers.get("Vary", "").lower()
    assert received_headers(seen)["x-tenant-id"] == [tenant["id"]]
    # No Origin: not a browser, nothing to check.
    await forwarded(site, f"{PRIVATE}/feed", token=access)

    for origin in (
        EVIL_ORIGIN,
        SUFFIX_ORIGIN,
        "null",
        "http://app.example.com",  # another scheme
        "https://globex.example.com",  # another tenant's origin
        PLATFORM_ORIGIN,  # the platform's users' origin, not this tenant's
    ):
        denied = await refused(
            site,
            f"{PRIVATE}/feed",
            403,
            "origin_not_allowed",
            token=access,
            headers={"Origin": origin},
        )
        assert "Access-Control-Allow-Origin" not in denied.headers, origin

    async def preflight(origin: str) -> Answer:
        return await site.call(
            "OPTIONS",
            f"{PRIVATE}/feed",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )

    before = len(site.upstream.seen)
    allowed = await preflight(ORIGIN)
    assert (allowed.status, allowed.body) == (204, b""), allowed.body
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert allowed.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    for origin in (EVIL_ORIGIN, SUFFIX_ORIGIN, "null"):
        foreign = await preflight(origin)
        assert_problem(foreign, 403, "origin_not_allowed")
        assert "Access-Control-Allow-Origin" not in foreign.headers
    assert len(site.upstream.seen) == before, "a preflight reached the upstream"

    # The tenant's admin changes the list: in force at once, for requests and preflights.
    changed = await site.call(
        "PUT", f"{TENANTS}/{tenant['id']}/origins", token=admin, body={"origins": [NEW_ORIGIN]}
    )
    assert changed.status == 200, changed.body
    assert changed.json()["origins"] == [NEW_ORIGIN]
    answer, _ = await forwarded(
        site, f"{PRIVATE}/feed", token=access, headers={"Origin": NEW_ORIGIN}
    )
    assert answer.headers["Access-Control-Allow-Origin"] == NEW_ORIGIN
    await refused(
        site, f"{PRIVATE}/feed", 403, "origin_not_allowed", token=access, headers={"Origin": ORIGIN}
    )
    assert (await preflight(NEW_ORIGIN)).status == 204
    assert_problem(await preflight(ORIGIN), 403, "origin_not_allowed")


# -- 4. rotation -------------------------------------------------------------------------------


async def test_rotated_key_keeps_working_for_the_grace_period_only(site: Site) -> None:
    admin = await site.admin()
    tenant, key = await site.tenant_with_key(admin)
    old = key["key"]
    await forwarded(site, f"{PARTNER}/x", key=old)

    rotated = await site.call(
        "POST",
        f"{TENANTS}/{tenant['id']}/api-keys/{key['id']}/rotate",
        token=admin,
        body={"grace": "2s"},
    )
    assert rotated.status == 201, rotated.body
    assert rotated.headers["Cache-Control"] == "no-store"
    successor = rotated.json()
    new = successor["key"]
    assert KEY_FORMAT.fullmatch(new)
    assert (new != old, successor["id"] != key["id"]) == (True, True)
    assert successor["tenant_id"] == tenant["id"]
    assert successor["previous"]["id"] == key["id"]
    assert successor["previous"]["rotated_to"] == successor["id"]

    # Primary and secondary: both work during the grace period.
    _, seen = await forwarded(site, f"{PARTNER}/x", key=new)
    assert received_headers(seen)["x-credential-id"] == [successor["id"]]
    _, seen = await forwarded(site, f"{PARTNER}/x", key=old)
    assert received_headers(seen)["x-credential-id"] == [key["id"]]

    await until_refused(site, f"{PARTNER}/x", "the old key refused after its grace period", key=old)
    await refused(site, f"{PARTNER}/x", 401, "invalid_api_key", key=old)
    _, seen = await forwarded(site, f"{PARTNER}/x", key=new)
    assert received_headers(seen)["x-credential-id"] == [successor["id"]]
    # A retired key cannot be rotated again.
    again = await site.call(
        "POST", f"{TENANTS}/{tenant['id']}/api-keys/{key['id']}/rotate", token=admin, body={}
    )
    assert_problem(again, 409, "conflict")
    listed = await site.call("GET", f"{TENANTS}/{tenant['id']}/api-keys", token=admin)
    by_id = {entry["id"]: entry for entry in listed.json()["api_keys"]}
    assert set(by_id) == {key["id"], successor["id"]}
    assert by_id[key["id"]]["rotated_to"] == successor["id"]
    assert old not in listed.body.decode()
    assert new not in listed.body.decode()


# -- 5. malformed keys cost no database look-up ------------------------------------------------


async def test_malformed_keys_are_refused_without_the_database(site: Site) -> None:
    admin = await site.admin()
    _, key = await site.tenant_with_key(admin)
    secret = key["key"]
    await forwarded(site, f"{PARTNER}/x", key=secret)  # now cached

    # The database goes away.
    database = site.core.db
    assert database is not None
    await database.close()

    unknown = credentials.generate(credentials.API_KEY_PREFIX)
    assert credentials.well_formed(unknown, credentials.API_KEY_PREFIX)
    malformed = [
        other_checksum(secret),  # a typo in the checksum
        secret[:10] + ("x" if secret[10] != "x" else "y") + secret[11:],  # ... in the body
        secret[:-1],  # too short
        secret + "A",  # too long
        "gwk_" + "!" * 38,  # not base62
        "gwp_" + secret[4:],  # a PAT's prefix
        "not a key at all",
    ]
    for bad in malformed:
        answer = await refused(site, f"{PARTNER}/x", 401, "invalid_api_key", key=bad)
        assert secret not in answer.body.decode()
    # Only a well-formed key needs the database: it is unavailable.
    await refused(site, f"{PARTNER}/x", 503, "auth_unavailable", key=unknown)
    assert_problem(await site.call("GET", FORWARD_AUTH, key=unknown), 503, "auth_unavailable")
    assert_problem(
        await site.call("GET", FORWARD_AUTH, key=other_checksum(secret)), 401, "invalid_api_key"
    )
    # A key seen before keeps working from the cache (docs/limits.md).
    await forwarded(site, f"{PARTNER}/x", key=secret)


# -- 6, 7. the client address --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forwarded_for", "allowed"),
    [
        pytest.param("::ffff:198.51.100.7", True, id="mapped-inside"),
        pytest.param("::ffff:198.51.101.7", False, id="mapped-outside"),
        pytest.param("198.51.100.7", True, id="plain-inside"),
        pytest.param("[::ffff:198.51.100.7]:4711", True, id="bracketed-mapped-with-port"),
        pytest.param("198.51.100.7:4711", True, id="plain-with-port"),
        pytest.param("2001:db8::7", True, id="ipv6-inside"),
        pytest.param("2001:db9::7", False, id="ipv6-outside"),
        # A rule written in the mapped form holds the plain IPv4 address too.
        pytest.param("203.0.113.5", True, id="plain-against-a-mapped-rule"),
        pytest.param("::ffff:203.0.113.5", True, id="mapped-against-a-mapped-rule"),
    ],
)
async def test_ipv4_mapped_client_address_matches_the_ipv4_rule(
    site_with: OpenSite, forwarded_for: str, allowed: bool
) -> None:
    async with site_with(trusted_proxies=["127.0.0.1/32"]) as site:
        admin = await site.admin()
        _, key = await site.tenant_with_key(
            admin, ip_whitelist=["198.51.100.0/24", "2001:db8::/32", "::ffff:203.0.113.0/120"]
        )
        headers = {"X-Forwarded-For": forwarded_for}
        verdict = await site.call("GET", FORWARD_AUTH, key=key["key"], headers=headers)
        if allowed:
            assert verdict.status == 200, verdict.body
            await forwarded(site, f"{PARTNER}/x", key=key["key"], headers=headers)
            session = await site.call(
                "POST",
                SDK_SESSION,
                key=key["key"],
                body={"external_user_id": "cust-1"},
                headers=headers,
            )
            assert session.status == 200, session.body
        else:
            assert_problem(verdict, 403, "ip_not_allowed")
            await refused(
                site, f"{PARTNER}/x", 403, "ip_not_allowed", key=key["key"], headers=headers
            )
        # Without the header the client is the proxy itself, which the whitelist does not hold.
        await refused(site, f"{PARTNER}/x", 403, "ip_not_allowed", key=key["key"])


async def test_internal_validation_matches_ipv4_mapped_addresses(site: Site) -> None:
    admin = await site.admin()
    _, key = await site.tenant_with_key(
        admin, ip_whitelist=["198.51.100.0/24", "2001:db8::/32", "::ffff:203.0.113.0/120"]
    )
    for ip, valid in (
        ("::ffff:198.51.100.7", True),
        ("198.51.100.7", True),
        ("::FFFF:198.51.100.7", True),
        ("::ffff:c633:6407", True),  # the same address in hex
        ("::ffff:198.51.101.7", False),
        ("198.51.101.7", False),
        ("2001:db8::7", True),
        ("2001:db9::7", False),
        ("203.0.113.5", True),
        ("::ffff:203.0.113.5", True),
        ("203.0.114.5", False),
        ("not an address", False),
    ):
        verdict = await site.service(INTERNAL_VALIDATE_KEY, {"api_key": key["key"], "ip": ip})
        assert verdict.status == 200, verdict.body
        assert verdict.json()["valid"] is valid, (ip, verdict.json())


async def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored(site: Site) -> None:
    admin = await site.admin()
    _, key = await site.tenant_with_key(admin, ip_whitelist=["198.51.100.0/24"])
    forged = {"X-Forwarded-For": "198.51.100.7"}
    await refused(site, f"{PARTNER}/x", 403, "ip_not_allowed", key=key["key"], headers=forged)
    session = await site.call(
        "POST", SDK_SESSION, key=key["key"], body={"external_user_id": "c"}, headers=forged
    )
    assert_problem(session, 403, "ip_not_allowed")
    answer = await site.call("GET", FORWARD_AUTH, key=key["key"], headers=forged)
    assert_problem(answer, 403, "ip_not_allowed")


@pytest.mark.parametrize(
    ("chain", "allowed"),
    [
        # Right to left past the trusted hops: 10.1.1.1 is a trusted proxy, 198.51.100.7 the
        # client; what the client wrote left of itself proves nothing.
        pytest.param("203.0.113.9, 198.51.100.7, 10.1.1.1", True, id="client-behind-two-proxies"),
        pytest.param("198.51.100.7, 203.0.113.9, 10.1.1.1", False, id="whitelisted-but-forged"),
    ],
)
async def test_trusted_proxy_chain_names_the_client(
    site_with: OpenSite, chain: str, allowed: bool
) -> None:
    async with site_with(
        trusted_proxies=["127.0.0.1/32", "10.0.0.0/8"],
    ) as site:
        admin = await site.admin()
        _, key = await site.tenant_with_key(admin, ip_whitelist=["198.51.100.0/24"])
        headers = {"X-Forwarded-For": chain}
        verdict = await site.call("GET", FORWARD_AUTH, key=key["key"], headers=headers)
        assert verdict.status == (200 if allowed else 403), verdict.body
        if allowed:
            await forwarded(site, f"{PARTNER}/x", key=key["key"], headers=headers)
        else:
            denied = await refused(
                site, f"{PARTNER}/x", 403, "ip_not_allowed", key=key["key"], headers=headers
            )

            async def logged() -> bool:
                return any(
                    entry["request_id"] == denied.request_id
                    and entry["event"] == "api_key"
                    and entry["ip"] == "203.0.113.9"
                    for entry in await site.audit(admin)
                )

            # The audit log names the address the resolver found.
            await eventually(logged, "the refusal audited with the resolved address")
        # The peer 127.0.0.2 is no trusted proxy: its header counts for nothing.
        await refused(
            site,
            f"{PARTNER}/x",
            403,
            "ip_not_allowed",
            key=key["key"],
            headers={"X-Forwarded-For": "198.51.100.7"},
            source=OTHER_ADDRESS,
        )


# -- 8. personal access tokens -----------------------------------------------------------------


async def test_personal_access_token_life_cycle(site: Site) -> None:
    user_id = await site.add_user("dev@example.com")
    access = (await site.login("dev@example.com"))["access_token"]

    created = await site.call("POST", TOKENS, token=access, body={"name": "ci"})
    assert created.status == 201, created.body
    assert created.headers["Cache-Control"] == "no-store"
    pat = created.json()
    secret = pat["token"]
    assert PAT_FORMAT.fullmatch(secret), secret
    assert pat["name"] == "ci"
    assert secret.startswith(pat["prefix"])
    second = await site.call("POST", TOKENS, token=access, body={"name": "laptop"})
    assert second.status == 201, second.body

    listed = await site.call("GET", TOKENS, token=access)
    assert listed.status == 200, listed.body
    assert {entry["name"] for entry in listed.json()["tokens"]} == {"ci", "laptop"}
    assert all("token" not in entry for entry in listed.json()["tokens"])
    assert secret not in listed.body.decode()
    assert second.json()["token"] not in listed.body.decode()
    assert credentials.credential_hash(secret) not in listed.body.decode()

    _, seen = await forwarded(site, f"{DEVELOPER}/repos", token=secret)
    headers = received_headers(seen)
    assert headers["x-auth-method"] == ["pat"]
    assert headers["x-credential-id"] == [pat["id"]]
    context = signed_context(site, seen)
    assert (context.auth_method, context.user_id, context.email, context.credential_id) == (
        "pat",
        user_id,
        "dev@example.com",
        pat["id"],
    )
    assert context.roles == ("user",)
    _, seen = await forwarded(site, f"{ANYONE}/repos", token=secret)
    assert received_headers(seen)["x-auth-method"] == ["pat"]
    assert received_headers(seen)["x-credential-id"] == [pat["id"]]
    _, seen = await forwarded(site, f"{ANYONE}/repos", token=access)
    assert received_headers(seen)["x-auth-method"] == ["jwt"]
    # A JWT is no PAT, a PAT no JWT, a malformed PAT nothing.
    await refused(site, f"{DEVELOPER}/repos", 401, "invalid_token", token=access)
    await refused(site, f"{PRIVATE}/repos", 401, "invalid_token", token=secret)
    await refused(site, f"{DEVELOPER}/repos", 401, "invalid_token", token=secret[:-1] + "!")
    await refused(site, f"{DEVELOPER}/repos", 401, "missing_credentials")

    limits = await site.call("GET", f"{TOKENS}/limits", token=access)
    assert limits.status == 200, limits.body
    by_name = {entry["name"]: entry for entry in limits.json()["limits"]}
    held = by_name["personal_access_tokens"]
    assert held["used"] == 2
    assert held["limit"] >= 2
    assert held["remaining"] == held["limit"] - 2
    # A tool holding only the PAT reads the same limits of its user.
    by_pat = await site.call("GET", f"{TOKENS}/limits", token=secret)
    assert by_pat.status == 200, by_pat.body
    by_name = {entry["name"]: entry for entry in by_pat.json()["limits"]}
    assert by_name["personal_access_tokens"]["used"] == 2
    # Only its limits: the tokens themselves stay behind an access token.
    assert_problem(await site.call("GET", TOKENS, token=secret), 401, "invalid_token")

    deleted = await site.call("DELETE", f"{TOKENS}/{pat['id']}", token=access)
    assert (deleted.status, deleted.body) == (204, b"")
    # Refused at once, wherever it was accepted.
    await refused(site, f"{DEVELOPER}/repos", 401, "invalid_token", token=secret)
    await refused(site, f"{ANYONE}/repos", 401, "invalid_token", token=secret)
    listed = await site.call("GET", TOKENS, token=access)
    assert [entry["name"] for entry in listed.json()["tokens"]] == ["laptop"]
    assert_problem(
        await site.call("DELETE", f"{TOKENS}/{pat['id']}", token=access), 404, "not_found"
    )
    limits = await site.call("GET", f"{TOKENS}/limits", token=access)
    held = {entry["name"]: entry for entry in limits.json()["limits"]}["personal_access_tokens"]
    assert held["used"] == 1
    assert_problem(await site.call("GET", f"{TOKENS}/limits", token=secret), 401, "invalid_token")
    await forwarded(site, f"{DEVELOPER}/repos", token=second.json()["token"])

    # One user cannot delete another's token.
    await site.add_user("eve@example.com")
    eve = (await site.login("eve@example.com"))["access_token"]
    theirs = await site.call("DELETE", f"{TOKENS}/{second.json()['id']}", token=eve)
    assert_problem(theirs, 404, "not_found")
    await forwarded(site, f"{DEVELOPER}/repos", token=second.json()["token"])
    assert_problem(await site.call("GET", TOKENS), 401, "missing_credentials")


# -- 9. tenant isolation -----------------------------------------------------------------------


async def test_tenant_names_are_unique_in_any_case(site: Site) -> None:
    admin = await site.admin()
    await site.create_tenant(admin, "Acme")
    other = await site.create_tenant(admin, "Globex")
    again = await site.call("POST", TENANTS, token=admin, body={"name": "ACME"})
    assert_problem(again, 409, "conflict")
    renamed = await site.call(
        "PATCH", f"{TENANTS}/{other['id']}", token=admin, body={"name": "acme"}
    )
    assert_problem(renamed, 409, "conflict")
    listed = await site.call("GET", TENANTS, token=admin)
    assert sorted(tenant["name"] for tenant in listed.json()["tenants"]) == ["Acme", "Globex"]


async def test_tenant_admin_manages_their_tenant_only(site: Site) -> None:
    admin = await site.admin()
    tenant_a, key_a = await site.tenant_with_key(admin, "Acme")
    tenant_b, key_b = await site.tenant_with_key(admin, "Globex")
    a, b = tenant_a["id"], tenant_b["id"]
    manager_id = await site.add_user(
        "boss@acme.example", roles=("user", "tenant_admin"), tenant_id=a
    )
    manager = (await site.login("boss@acme.example"))["access_token"]
    await site.sdk_session(key_a["key"], "acme-customer")
    await site.sdk_session(key_b["key"], "globex-customer")

    own = await site.call("GET", f"{TENANTS}/{a}", token=manager)
    assert (own.status, own.json()["id"]) == (200, a)
    keys = await site.call("GET", f"{TENANTS}/{a}/api-keys", token=manager)
    assert keys.status == 200, keys.body
    assert [entry["id"] for entry in keys.json()["api_keys"]] == [key_a["id"]]
    users = await site.call("GET", f"{TENANTS}/{a}/users", token=manager)
    assert users.status == 200, users.body
    listed_users = users.json()["users"]
    assert manager_id in {user["id"] for user in listed_users}
    assert all(user["tenant_id"] == a for user in listed_users)
    assert "password_hash" not in users.body.decode()
    assert len(listed_users) == 2  # the admin and the SDK's end user
    made = await site.create_key(manager, a, {"name": "second"})
    assert made["tenant_id"] == a
    renamed = await site.call("PATCH", f"{TENANTS}/{a}", token=manager, body={"name": "Acme Inc"})
    assert (renamed.status, renamed.json()["name"]) == (200, "Acme Inc")

    for method, path, body in (
        ("GET", f"{TENANTS}/{b}", None),
        ("PATCH", f"{TENANTS}/{b}", {"name": "taken over"}),
        ("PUT", f"{TENANTS}/{b}/origins", {"origins": [EVIL_ORIGIN]}),
        ("PUT", f"{TENANTS}/{b}/ip-whitelist", {"ip_whitelist": ["0.0.0.0/0"]}),
        ("GET", f"{TENANTS}/{b}/api-keys", None),
        ("POST", f"{TENANTS}/{b}/api-keys", {"name": "mine now"}),
        ("DELETE", f"{TENANTS}/{b}/api-keys/{key_b['id']}", None),
        ("POST", f"{TENANTS}/{b}/api-keys/{key_b['id']}/rotate", {"grace": "1s"}),
        ("GET", f"{TENANTS}/{b}/users", None),
        ("GET", f"{TENANTS}/ten_nobody", None),
        ("GET", TENANTS, None),
        ("POST", TENANTS, {"name": "Initech"}),
        ("GET", "/api/v1/users", None),
        ("GET", AUDIT, None),
    ):
        answer = await site.call(method, path, token=manager, body=body)
        assert answer.status == 403, (method, path, answer.body)
        assert_problem(answer, 403, "insufficient_role")
    # B's key cannot be reached through A's path either.
    for method, path in (
        ("DELETE", f"{TENANTS}/{a}/api-keys/{key_b['id']}"),
        ("POST", f"{TENANTS}/{a}/api-keys/{key_b['id']}/rotate"),
    ):
        answer = await site.call(method, path, token=manager, body={} if method == "POST" else None)
        assert_problem(answer, 404, "not_found")

    # Nothing of B changed.
    fetched = await site.call("GET", f"{TENANTS}/{b}", token=admin)
    assert fetched.json() == tenant_b
    b_keys = await site.call("GET", f"{TENANTS}/{b}/api-keys", token=admin)
    assert [(k["id"], k["revoked_at"], k["rotated_to"]) for k in b_keys.json()["api_keys"]] == [
        (key_b["id"], None, None)
    ]
    await forwarded(site, f"{PARTNER}/x", key=key_b["key"])
    listed_tenants = await site.call("GET", TENANTS, token=admin)
    assert len(listed_tenants.json()["tenants"]) == 2


# -- 10. service tokens ------------------------------------------------------------------------


async def test_service_token_and_internal_validation(site: Site) -> None:
    service = {"Authorization": f"Service {await site.service_token()}"}
    _, seen = await forwarded(site, f"{INTERNAL}/jobs", headers=service)
    assert received_headers(seen)["x-auth-method"] == ["service"]
    assert signed_context(site, seen).auth_method == "service"
    wrong = {"Authorization": "Service " + "x" * 64}
    await refused(site, f"{INTERNAL}/jobs", 401, "invalid_token", headers=wrong)
    await refused(site, f"{INTERNAL}/jobs", 401, "missing_credentials")
    await refused(
        site, f"{INTERNAL}/jobs", 401, "missing_credentials", headers={"Authorization": "Service "}
    )

    admin = await site.admin()
    _, key = await site.tenant_with_key(admin)
    user_id = await site.add_user("kim@example.com")
    pair = await site.login("kim@example.com")
    # A user's access token and API key are not service tokens.
    await refused(site, f"{INTERNAL}/jobs", 401, "missing_credentials", token=pair["access_token"])
    await refused(site, f"{INTERNAL}/jobs", 401, "missing_credentials", key=key["key"])

    verdict = await site.service(INTERNAL_VALIDATE, {"token": pair["access_token"]})
    assert verdict.status == 200, verdict.body
    document = verdict.json()
    assert document["valid"] is True, document
    context = document["context"]
    assert (context["auth_method"], context["user_id"], context["session_id"]) == (
        "jwt",
        user_id,
        pair["session_id"],
    )
    assert context["roles"] == ["user"]
    for secret in (None, "x" * 64):
        headers = {} if secret is None else {"Authorization": f"Service {secret}"}
        answer = await site.call(
            "POST", INTERNAL_VALIDATE, body={"token": pair["access_token"]}, headers=headers
        )
        code = "missing_credentials" if secret is None else "invalid_token"
        assert_problem(answer, 401, code)

    logout = await site.call("POST", LOGOUT, token=pair["access_token"])
    assert logout.status == 204, logout.body
    revoked = await site.service(INTERNAL_VALIDATE, {"token": pair["access_token"]})
    assert revoked.status == 200, revoked.body
    assert revoked.json()["valid"] is False
    assert revoked.json()["error"] == "token_revoked"
    garbage = await site.service(INTERNAL_VALIDATE, {"token": "not-a-token"})
    assert garbage.json()["valid"] is False

    outside = await site.service(
        INTERNAL_VALIDATE_KEY, {"api_key": key["key"], "ip": OTHER_ADDRESS}
    )
    assert outside.status == 200, outside.body
    assert outside.json()["valid"] is False
    assert outside.json()["error"] == "ip_not_allowed"
    inside = await site.service(INTERNAL_VALIDATE_KEY, {"api_key": key["key"], "ip": "127.0.0.1"})
    assert inside.status == 200, inside.body
    assert inside.json()["valid"] is True, inside.json()
    assert (
        inside.json()["context"]["auth_method"],
        inside.json()["context"]["tenant_id"],
        inside.json()["context"]["credential_id"],
    ) == ("api_key", key["tenant_id"], key["id"])
    malformed = await site.service(
        INTERNAL_VALIDATE_KEY, {"api_key": other_checksum(key["key"]), "ip": "127.0.0.1"}
    )
    assert (malformed.json()["valid"], malformed.json()["error"]) == (False, "invalid_api_key")
    missing = await site.service(INTERNAL_VALIDATE_KEY, {"ip": "127.0.0.1"})
    assert_problem(missing, 400, "invalid_request")


# -- 11. the audit log -------------------------------------------------------------------------


async def test_audit_log_shows_tenants_keys_and_refusals(site: Site) -> None:
    admin_id = await site.add_user("root@example.com", roles=("user", "admin"))
    admin = (await site.login("root@example.com"))["access_token"]
    tenant_create = await site.call(
        "POST",
        TENANTS,
        token=admin,
        body={"name": "Acme", "origins": [ORIGIN], "ip_whitelist": ["127.0.0.1/32"]},
    )
    tenant = tenant_create.json()
    key_create = await site.call(
        "POST", f"{TENANTS}/{tenant['id']}/api-keys", token=admin, body={"name": "backend"}
    )
    key = key_create.json()
    secret = key["key"]
    from_elsewhere = await site.call("GET", f"{PARTNER}/x", key=secret, source=OTHER_ADDRESS)
    assert_problem(from_elsewhere, 403, "ip_not_allowed")
    malformed = await site.call("GET", f"{PARTNER}/x", key=other_checksum(secret))
    assert_problem(malformed, 401, "invalid_api_key")
    revoke = await site.call(
        "DELETE", f"{TENANTS}/{tenant['id']}/api-keys/{key['id']}", token=admin
    )
    assert (revoke.status, revoke.body) == (204, b"")
    after = await refused(site, f"{PARTNER}/x", 401, "invalid_api_key", key=secret)

    steps = [
        # (id, answer, status, event, outcome, reason, ip)
        ("tenant created", tenant_create, 201, "tenant_create", "success", None, "127.0.0.1"),
        ("key created", key_create, 201, "api_key_create", "success", None, "127.0.0.1"),
        (
            "key from elsewhere",
            from_elsewhere,
            403,
            "api_key",
            "refused",
            "ip_not_allowed",
            OTHER_ADDRESS,
        ),
        ("malformed key", malformed, 401, "api_key", "refused", "malformed", "127.0.0.1"),
        ("key revoked", revoke, 204, "api_key_revoke", "success", None, "127.0.0.1"),
        ("revoked key", after, 401, "api_key", "refused", "revoked", "127.0.0.1"),
    ]

    def matches(entries: list[dict[str, Any]], step: tuple[Any, ...]) -> list[dict[str, Any]]:
        _, answer, _, event, outcome, _, _ = step
        return [
            entry
            for entry in entries
            if entry["request_id"] == answer.request_id
            and (entry["event"], entry["outcome"]) == (event, outcome)
        ]

    async def complete() -> bool:
        entries = await site.audit(admin)
        return all(matches(entries, step) for step in steps)

    # Refusals are written off the request path: wait for them (bounded).
    await eventually(complete, "every step in the audit log")
    entries = await site.audit(admin)
    for step in steps:
        case, answer, status, _, _, reason, ip = step
        assert answer.status == status, (case, answer.body)
        found = matches(entries, step)
        assert len(found) == 1, (case, found)
        entry = found[0]
        detail = entry["detail"] or {}
        assert entry["ip"] == ip, (case, entry)
        if reason is not None:
            assert detail.get("reason") == reason, (case, entry)
        if step[3] != "api_key" or reason != "malformed":
            assert detail.get("tenant_id") == tenant["id"], (case, entry)
        if step[3] in ("api_key_create", "api_key_revoke") or reason in (
            "ip_not_allowed",
            "revoked",
        ):
            assert detail.get("key_id") == key["id"], (case, entry)
        if step[4] == "success":
            assert entry["actor_id"] == admin_id, (case, entry)
    text = json.dumps(entries)
    assert secret not in text
    assert other_checksum(secret) not in text
    # The denial is audited once: by the auth core, not a second time by the gateway.
    for answer in (from_elsewhere, malformed, after):
        assert len([e for e in entries if e["request_id"] == answer.request_id]) == 1
    refusals = await site.call("GET", f"{AUDIT}?event=api_key", token=admin)
    assert {entry["event"] for entry in refusals.json()["entries"]} == {"api_key"}


# -- 12. forwardAuth ----------------------------------------------------------------------------


async def test_forward_auth_takes_an_api_key(site: Site) -> None:
    admin = await site.admin()
    tenant, key = await site.tenant_with_key(admin)
    original = {"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/orders?page=2"}
    answer = await site.call("GET", FORWARD_AUTH, key=key["key"], headers=original)
    assert answer.status == 200, answer.body
    assert answer.headers["X-Tenant-Id"] == tenant["id"]
    assert answer.headers["X-Auth-Method"] == "api_key"
    assert answer.headers["X-Credential-Id"] == key["id"]
    context = verify(
        site.context_keys("forward_auth"), "forward_auth", "POST", "/orders?page=2", answer.headers
    )
    assert (context.auth_method, context.tenant_id, context.credential_id) == (
        "api_key",
        tenant["id"],
        key["id"],
    )
    denied = await site.call(
        "GET", FORWARD_AUTH, key=key["key"], headers=original, source=OTHER_ADDRESS
    )
    assert_problem(denied, 403, "ip_not_allowed")
    assert "X-Tenant-Id" not in denied.headers
    malformed = await site.call("GET", FORWARD_AUTH, key=other_checksum(key["key"]))
    assert_problem(malformed, 401, "invalid_api_key")
    assert_problem(await site.call("GET", FORWARD_AUTH), 401, "missing_credentials")


# -- more of the same flows: whitelists in force at once, per-key lists, flags, replicas --------


async def test_whitelist_changes_are_in_force_at_once(site: Site) -> None:
    admin = await site.admin()
    tenant, key = await site.tenant_with_key(admin)
    secret = key["key"]
    tenant_path = f"{TENANTS}/{tenant['id']}"
    whitelist_path = f"{tenant_path}/ip-whitelist"
    await forwarded(site, f"{PARTNER}/x", key=secret)  # cached with the old whitelist
    await refused(site, f"{PARTNER}/x", 403, "ip_not_allowed", key=secret, source=OTHER_ADDRESS)

    moved_to = {"ip_whitelist": [f"{OTHER_ADDRESS}/32"]}
    moved = await site.call("PUT", whitelist_path, token=admin, body=moved_to)
    assert moved.status == 200, moved.body
    assert moved.json()["ip_whitelist"] == [f"{OTHER_ADDRESS}/32"]
    await refused(site, f"{PARTNER}/x", 403, "ip_not_allowed", key=secret)
    await forwarded(site, f"{PARTNER}/x", key=secret, source=OTHER_ADDRESS)

    both = {"ip_whitelist": ["127.0.0.0/8"], "origins": [NEW_ORIGIN]}
    patched = await site.call("PATCH", tenant_path, token=admin, body=both)
    assert patched.status == 200, patched.body
    await forwarded(site, f"{PARTNER}/x", key=secret)
    await forwarded(site, f"{PARTNER}/x", key=secret, source=OTHER_ADDRESS)
    # Only the list is replaced by PUT: anything else in the body is refused.
    mixed = {"ip_whitelist": ["127.0.0.1/32"], "origins": [EVIL_ORIGIN]}
    assert_problem(
        await site.call("PUT", whitelist_path, token=admin, body=mixed), 400, "invalid_request"
    )


async def test_a_key_of_its_own_narrows_the_tenant_whitelist(site: Site) -> None:
    admin = await site.admin()
    tenant = await site.create_tenant(admin, ip_whitelist=["127.0.0.0/8"])
    narrow = await site.create_key(admin, tenant["id"], {"allow_ips": [f"{OTHER_ADDRESS}/32"]})
    assert narrow["allow_ips"] == [f"{OTHER_ADDRESS}/32"]
    wide = await site.create_key(admin, tenant["id"])
    assert wide["allow_ips"] is None
    await refused(site, f"{PARTNER}/x", 403, "ip_not_allowed", key=narrow["key"])
    await forwarded(site, f"{PARTNER}/x", key=narrow["key"], source=OTHER_ADDRESS)
    await forwarded(site, f"{PARTNER}/x", key=wide["key"])
    await forwarded(site, f"{PARTNER}/x", key=wide["key"], source=OTHER_ADDRESS)
    # A key's list cannot widen the tenant's.
    outside = await site.create_key(admin, tenant["id"], {"allow_ips": ["198.51.100.0/24"]})
    await refused(site, f"{PARTNER}/x", 403, "ip_not_allowed", key=outside["key"])


BAD_TENANTS = [
    ("no name", {"origins": [ORIGIN]}),
    ("not a CIDR", {"name": "x", "ip_whitelist": ["10.0.0.300/8"]}),
    ("host bits set", {"name": "x", "ip_whitelist": ["10.0.0.1/8"]}),
    ("whitelist not a list", {"name": "x", "ip_whitelist": "127.0.0.1/32"}),
    ("origin with a path", {"name": "x", "origins": ["https://app.example.com/app"]}),
    ("origin without a scheme", {"name": "x", "origins": ["app.example.com"]}),
    ("origin null", {"name": "x", "origins": ["null"]}),
    # As PATCH, PUT and key creation do: a typo ("ip_whitelst") must not make a tenant with
    # other whitelists than the caller meant.
    ("unknown field", {"name": "x", "owner": "me"}),
]


@pytest.mark.parametrize("body", cases(BAD_TENANTS))
async def test_bad_tenants_are_refused(site: Site, body: dict[str, Any]) -> None:
    admin = await site.admin()
    answer = await site.call("POST", TENANTS, token=admin, body=body)
    assert_problem(answer, 400, "invalid_request")
    listed = await site.call("GET", TENANTS, token=admin)
    assert listed.json()["tenants"] == []


async def test_expired_key_is_refused(site: Site) -> None:
    admin = await site.admin()
    tenant = await site.create_tenant(admin)
    key = await site.create_key(admin, tenant["id"], {"expires_at": "1s"})
    assert key["expires_at"] is not None

    await until_refused(site, f"{PARTNER}/x", "the key refused once it expired", key=key["key"])
    await refused(site, f"{PARTNER}/x", 401, "invalid_api_key", key=key["key"])
    assert_problem(await site.sdk_session(key["key"]), 401, "invalid_api_key")
    past = await site.call(
        "POST", f"{TENANTS}/{tenant['id']}/api-keys", token=admin, body={"expires_at": 1}
    )
    assert_problem(past, 400, "invalid_request")


async def test_revoked_key_is_refused_everywhere_at_once(site: Site) -> None:
    admin = await site.admin()
    tenant, key = await site.tenant_with_key(admin)
    assert (await site.sdk_session(key["key"])).status == 200
    await forwarded(site, f"{PARTNER}/x", key=key["key"])
    revoked = await site.call(
        "DELETE", f"{TENANTS}/{tenant['id']}/api-keys/{key['id']}", token=admin
    )
    assert (revoked.status, revoked.body) == (204, b"")
    await refused(site, f"{PARTNER}/x", 401, "invalid_api_key", key=key["key"])
    await refused(site, f"{ANYONE}/x", 401, "invalid_api_key", key=key["key"])
    assert_problem(await site.sdk_session(key["key"]), 401, "invalid_api_key")
    assert_problem(await site.call("GET", FORWARD_AUTH, key=key["key"]), 401, "invalid_api_key")
    verdict = await site.service(INTERNAL_VALIDATE_KEY, {"api_key": key["key"], "ip": "127.0.0.1"})
    assert (verdict.json()["valid"], verdict.json()["error"]) == (False, "invalid_api_key")
    listed = await site.call("GET", f"{TENANTS}/{tenant['id']}/api-keys", token=admin)
    assert listed.json()["api_keys"][0]["revoked_at"] is not None
    # A revoked key cannot be rotated back to life.
    again = await site.call(
        "POST", f"{TENANTS}/{tenant['id']}/api-keys/{key['id']}/rotate", token=admin, body={}
    )
    assert_problem(again, 409, "conflict")


async def test_whitelist_flags_turn_the_checks_off(site_with: OpenSite) -> None:
    async with site_with(ip_whitelist_enabled=False, origin_validation_enabled=False) as site:
        admin = await site.admin()
        _, key = await site.tenant_with_key(admin)
        await forwarded(site, f"{PARTNER}/x", key=key["key"], source=OTHER_ADDRESS)
        opened = await site.sdk_session(key["key"], source=OTHER_ADDRESS)
        assert opened.status == 200, opened.body
        access = opened.json()["access_token"]
        await forwarded(site, f"{PRIVATE}/x", token=access, headers={"Origin": EVIL_ORIGIN})
        # The credential itself is still checked.
        await refused(site, f"{PARTNER}/x", 401, "invalid_api_key", key=other_checksum(key["key"]))


async def test_sdk_sessions_stay_within_their_tenant(site: Site) -> None:
    admin = await site.admin()
    acme_tenant, acme = await site.tenant_with_key(admin, "Acme")
    _, globex = await site.tenant_with_key(admin, "Globex")
    # The same external id at two tenants: two different users.
    first = (await site.sdk_session(acme["key"], "42")).json()
    second = (await site.sdk_session(globex["key"], "42")).json()
    assert first["user"]["id"] != second["user"]["id"]
    assert first["user"]["tenant_id"] == acme_tenant["id"]

    for roles in (["admin"], ["user", "tenant_admin"]):
        answer = await site.call(
            "POST", SDK_SESSION, key=acme["key"], body={"external_user_id": "7", "roles": roles}
        )
        assert_problem(answer, 400, "invalid_request")
    for body in ({}, {"external_user_id": ""}, {"external_user_id": ["x"]}):
        answer = await site.call("POST", SDK_SESSION, key=acme["key"], body=body)
        assert_problem(answer, 400, "invalid_request")
    assert_problem(
        await site.call("POST", SDK_SESSION, body={"external_user_id": "7"}),
        401,
        "missing_credentials",
    )
    # An end user's token does not reach the tenants API.
    await refused(
        site,
        f"{TENANTS}/{acme_tenant['id']}",
        403,
        "insufficient_role",
        token=first["access_token"],
    )

    # Globex's backend cannot end Acme's user's sessions, by external id or refresh token.
    by_id = await site.call(
        "POST", "/v1/sdk/logout", key=globex["key"], body={"external_user_id": "42"}
    )
    assert by_id.status == 204, by_id.body
    by_token = await site.call(
        "POST", "/v1/sdk/logout", key=globex["key"], body={"refresh_token": first["refresh_token"]}
    )
    assert by_token.status == 204, by_token.body
    await forwarded(site, f"{PRIVATE}/x", token=first["access_token"])
    await refused(site, f"{PRIVATE}/x", 401, "token_revoked", token=second["access_token"])
    # Acme's backend ends every session of its own user.
    ended = await site.call(
        "POST", "/v1/sdk/logout", key=acme["key"], body={"external_user_id": "42"}
    )
    assert ended.status == 204, ended.body
    await refused(site, f"{PRIVATE}/x", 401, "token_revoked", token=first["access_token"])


async def test_pat_follows_its_user(site: Site) -> None:
    admin = await site.admin()
    user_id = await site.add_user("dev@example.com")
    access = (await site.login("dev@example.com"))["access_token"]
    created = await site.call("POST", TOKENS, token=access, body={"name": "ci", "scopes": ["read"]})
    assert created.status == 201, created.body
    secret = created.json()["token"]
    assert created.json()["scopes"] == ["read"]
    _, seen = await forwarded(site, f"{DEVELOPER}/x", token=secret)
    assert received_headers(seen)["x-user-roles"] == ["user"]

    verdict = await site.service(INTERNAL_VALIDATE, {"token": secret})
    assert verdict.json()["valid"] is True, verdict.json()
    assert verdict.json()["context"]["auth_method"] == "pat"
    assert verdict.json()["context"]["user_id"] == user_id

    path = f"/api/v1/users/{user_id}"
    promoted = await site.call("PATCH", path, token=admin, body={"roles": ["user", "editor"]})
    assert promoted.status == 200, promoted.body
    _, seen = await forwarded(site, f"{DEVELOPER}/x", token=secret)
    assert received_headers(seen)["x-user-roles"] == ["user,editor"]

    disabled = await site.call("PATCH", path, token=admin, body={"disabled": True})
    assert disabled.status == 200, disabled.body
    await refused(site, f"{DEVELOPER}/x", 401, "invalid_token", token=secret)
    # Enabled again, the user's PAT works again at once (not only when its cached refusal
    # happens to be dropped by some unrelated revocation, or after GRANT_TTL).
    enabled = await site.call("PATCH", path, token=admin, body={"disabled": False})
    assert enabled.status == 200, enabled.body
    await forwarded(site, f"{DEVELOPER}/x", token=secret)

    deleted = await site.call("DELETE", path, token=admin)
    assert deleted.status == 204, deleted.body
    await refused(site, f"{DEVELOPER}/x", 401, "invalid_token", token=secret)
    verdict = await site.service(INTERNAL_VALIDATE, {"token": secret})
    assert verdict.json()["valid"] is False


async def test_forward_auth_holds_a_tenant_token_to_the_tenant_origins(site: Site) -> None:
    admin = await site.admin()
    tenant, key = await site.tenant_with_key(admin)
    access = (await site.sdk_session(key["key"])).json()["access_token"]
    allowed = await site.call("GET", FORWARD_AUTH, token=access, headers={"Origin": ORIGIN})
    assert allowed.status == 200, allowed.body
    assert allowed.headers["X-Tenant-Id"] == tenant["id"]
    assert allowed.headers["X-Auth-Method"] == "jwt"
    for origin in (EVIL_ORIGIN, SUFFIX_ORIGIN, "null"):
        denied = await site.call("GET", FORWARD_AUTH, token=access, headers={"Origin": origin})
        assert_problem(denied, 403, "origin_not_allowed")


async def test_a_change_made_on_one_replica_is_in_force_on_another(
    tmp_path: Path,
    database_url: str,
    upstream: Upstream,
    client: ClientSession,
    elsewhere: ClientSession,
) -> None:
    """Two gateways on one database: what one changes, the other enforces (docs/authentication.md),
    without a restart. Polled with a generous bound, never timed."""
    settings = quiet_settings(
        auth=auth_settings(tmp_path, database_url=database_url),
    )
    table = shipped_routes(upstream)
    async with two_gateways(table, tmp_path, settings) as (gateway_one, gateway_two):
        one = Site(gateway_one, upstream, client, elsewhere)
        two = Site(gateway_two, upstream, client, elsewhere)
        admin = await one.admin()
        tenant, key = await one.tenant_with_key(admin)
        secret = key["key"]
        opened = await two.sdk_session(secret)
        assert opened.status == 200, opened.body
        access = opened.json()["access_token"]
        await forwarded(two, f"{PARTNER}/x", key=secret)
        await forwarded(two, f"{PRIVATE}/x", token=access, headers={"Origin": ORIGIN})
        await refused(
            two,
            f"{PRIVATE}/x",
            403,
            "origin_not_allowed",
            token=access,
            headers={"Origin": NEW_ORIGIN},
        )
        user_token = (await one.login("root@example.com"))["access_token"]
        pat = (await one.call("POST", TOKENS, token=user_token, body={"name": "ci"})).json()
        await forwarded(two, f"{DEVELOPER}/x", token=pat["token"])

        async def status(site: Site, path: str, **call: Any) -> int:
            return (await site.call("GET", path, **call)).status

        # The whitelists change on one.
        changed = await one.call(
            "PATCH",
            f"{TENANTS}/{tenant['id']}",
            token=admin,
            body={"ip_whitelist": [f"{OTHER_ADDRESS}/32"], "origins": [NEW_ORIGIN]},
        )
        assert changed.status == 200, changed.body

        async def whitelists_moved() -> bool:
            return (
                await status(two, f"{PARTNER}/x", key=secret) == 403
                and await status(two, f"{PRIVATE}/x", token=access, headers={"Origin": ORIGIN})
                == 403
            )

        await eventually(whitelists_moved, "the new whitelists in force on the other replica")
        await forwarded(two, f"{PARTNER}/x", key=secret, source=OTHER_ADDRESS)
        await forwarded(two, f"{PRIVATE}/x", token=access, headers={"Origin": NEW_ORIGIN})

        # A PAT deleted and a key revoked on one.
        deleted = await one.call("DELETE", f"{TOKENS}/{pat['id']}", token=user_token)
        assert deleted.status == 204, deleted.body
        revoked = await one.call(
            "DELETE", f"{TENANTS}/{tenant['id']}/api-keys/{key['id']}", token=admin
        )
        assert revoked.status == 204, revoked.body

        async def credentials_gone() -> bool:
            return (
                await status(two, f"{DEVELOPER}/x", token=pat["token"]) == 401
                and await status(two, f"{PARTNER}/x", key=secret, source=OTHER_ADDRESS) == 401
            )

        await eventually(credentials_gone, "the PAT and the key refused on the other replica")


async def test_a_tenant_without_a_whitelist_accepts_its_keys_from_nowhere(site: Site) -> None:
    """The client IP must be on the tenant's whitelist (docs/authentication.md): an empty one holds
    no address, so its keys work from nowhere (fail closed), until addresses are added."""
    admin = await site.admin()
    tenant = await site.create_tenant(admin, ip_whitelist=[])
    key = await site.create_key(admin, tenant["id"])
    await refused(site, f"{PARTNER}/x", 403, "ip_not_allowed", key=key["key"])
    assert_problem(await site.sdk_session(key["key"]), 403, "ip_not_allowed")
    added = await site.call(
        "PUT",
        f"{TENANTS}/{tenant['id']}/ip-whitelist",
        token=admin,
        body={"ip_whitelist": ["127.0.0.1"]},
    )
    assert (added.status, added.json()["ip_whitelist"]) == (200, ["127.0.0.1/32"])
    await forwarded(site, f"{PARTNER}/x", key=key["key"])


async def test_wildcard_origins_hold_subdomains_only(site: Site) -> None:
    admin = await site.admin()
    _, key = await site.tenant_with_key(admin, origins=["https://*.example.com"])
    access = (await site.sdk_session(key["key"])).json()["access_token"]
    for origin in ("https://app.example.com", "https://a.b.example.com"):
        answer, _ = await forwarded(site, f"{PRIVATE}/x", token=access, headers={"Origin": origin})
        assert answer.headers["Access-Control-Allow-Origin"] == origin
    for origin in (
        "https://example.com",
        "https://evilexample.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://app.example.com.evil.com",
    ):
        sent = {"Origin": origin}
        await refused(site, f"{PRIVATE}/x", 403, "origin_not_allowed", token=access, headers=sent)


async def test_the_auth_api_holds_a_tenant_token_to_the_tenant_origins(site: Site) -> None:
    """Auth-core endpoints reached through `auth: none` routes check the Origin themselves."""
    admin = await site.admin()
    _, key = await site.tenant_with_key(admin)
    pair = (await site.sdk_session(key["key"])).json()
    access = pair["access_token"]
    me = await site.call("GET", "/api/v1/auth/me", token=access, headers={"Origin": ORIGIN})
    assert me.status == 200, me.body
    assert me.headers["Access-Control-Allow-Origin"] == ORIGIN
    for path in ("/api/v1/auth/me", "/api/v1/auth/session/status"):
        answer = await site.call("GET", path, token=access, headers={"Origin": EVIL_ORIGIN})
        assert_problem(answer, 403, "origin_not_allowed")
        assert "Access-Control-Allow-Origin" not in answer.headers
    logout = await site.call("POST", LOGOUT, token=access, headers={"Origin": EVIL_ORIGIN})
    assert_problem(logout, 403, "origin_not_allowed")
    # The refused logout ended nothing.
    await forwarded(site, f"{PRIVATE}/x", token=access)
    # A refreshed pair is bound to the tenant as well.
    renewed = await site.call(
        "POST", "/v1/sdk/refresh", key=key["key"], body={"refresh_token": pair["refresh_token"]}
    )
    assert renewed.status == 200, renewed.body
    fresh = renewed.json()["access_token"]
    _, seen = await forwarded(site, f"{PRIVATE}/x", token=fresh, headers={"Origin": ORIGIN})
    assert received_headers(seen)["x-tenant-id"] == [key["tenant_id"]]
    evil = {"Origin": EVIL_ORIGIN}
    await refused(site, f"{PRIVATE}/x", 403, "origin_not_allowed", token=fresh, headers=evil)


async def test_no_service_secret_entry_is_a_credential(site_with: OpenSite) -> None:
    """GATEWAY_SERVICE_SECRET signs context headers and authenticates nothing: neither of its
    entries, a prefix, its key id nor the whole entry opens an `auth: service` route or the
    internal endpoints; a service token does, and its context is signed with the current
    entry."""
    current, previous = Keyring.generate("s2"), Keyring.generate("s1")
    keyring = Keyring.parse(f"{current},{previous}")
    async with site_with(service_keyring=keyring) as site:
        presented = [
            current.partition(":")[2],
            previous.partition(":")[2],
            current.partition(":")[2][:-1],
            "s2",
            current,
        ]
        for wrong in presented:
            service = {"Authorization": f"Service {wrong}"}
            await refused(site, f"{INTERNAL}/x", 401, "invalid_token", headers=service)
            for path, body in ((INTERNAL_VALIDATE, {"token": "x"}), (INTERNAL_VALIDATE_KEY, {})):
                answer = await site.call("POST", path, body=body, headers=service)
                assert_problem(answer, 401, "invalid_token")
        assert site.upstream.seen == [], "nothing reached the upstream"
        token = await site.service_token()
        _, seen = await forwarded(
            site, f"{INTERNAL}/x", headers={"Authorization": f"Service {token}"}
        )
        assert received_headers(seen)["x-auth-method"] == ["service"]
        assert received_headers(seen)["x-gateway-signature"][0].startswith("v2,kid=s2,aud=echo,")


async def test_expired_pat_is_refused(site: Site) -> None:
    await site.add_user("dev@example.com")
    access = (await site.login("dev@example.com"))["access_token"]
    created = await site.call("POST", TOKENS, token=access, body={"name": "t", "expires_at": "1s"})
    assert created.status == 201, created.body
    assert created.json()["expires_at"] is not None
    secret = created.json()["token"]

    await until_refused(site, f"{DEVELOPER}/x", "the PAT refused once it expired", token=secret)
    await refused(site, f"{DEVELOPER}/x", 401, "token_expired", token=secret)
    for body in ({}, {"name": ""}, {"name": "x", "expires_at": 1}, {"name": "x", "scopes": "all"}):
        assert_problem(
            await site.call("POST", TOKENS, token=access, body=body), 400, "invalid_request"
        )


async def test_ipv6_socket_peers_match_the_whitelists(
    tmp_path: Path,
    database_url: str,
    upstream: Upstream,
    client: ClientSession,
    elsewhere: ClientSession,
) -> None:
    """IPv4 clients of a dual-stack socket arrive as ::ffff:127.0.0.x and must match IPv4
    rules; an IPv6 client (::1) matches IPv6 rules."""
    settings = quiet_settings(
        auth=auth_settings(tmp_path, database_url=database_url),
    )
    (tmp_path / "mapped").mkdir()
    (tmp_path / "ipv6").mkdir()
    table = shipped_routes(upstream)
    async with (
        running_gateway(
            table, tmp_path / "mapped", settings, host="::ffff:127.0.0.1"
        ) as mapped_gateway,
        running_gateway(table, tmp_path / "ipv6", settings, host="::1") as ipv6_gateway,
    ):
        port = mapped_gateway.port
        mapped = Site(mapped_gateway, upstream, client, elsewhere, f"http://127.0.0.1:{port}")
        ipv6 = Site(ipv6_gateway, upstream, client, elsewhere, f"http://[::1]:{ipv6_gateway.port}")
        admin = await mapped.admin()
        tenant, key = await mapped.tenant_with_key(admin, ip_whitelist=["127.0.0.1/32"])
        secret = key["key"]

        await forwarded(mapped, f"{PARTNER}/x", key=secret)
        await refused(
            mapped, f"{PARTNER}/x", 403, "ip_not_allowed", key=secret, source=OTHER_ADDRESS
        )
        assert (await mapped.sdk_session(secret)).status == 200
        await refused(ipv6, f"{PARTNER}/x", 403, "ip_not_allowed", key=secret)

        changed = await mapped.call(
            "PUT",
            f"{TENANTS}/{tenant['id']}/ip-whitelist",
            token=admin,
            body={"ip_whitelist": ["::1/128", "::ffff:127.0.0.2/128"]},
        )
        assert changed.status == 200, changed.body

        async def moved() -> bool:
            return (await ipv6.call("GET", f"{PARTNER}/x", key=secret)).status == 200

        await eventually(moved, "the IPv6 rule in force on the other gateway")
        await forwarded(ipv6, f"{PARTNER}/x", key=secret)
        await forwarded(mapped, f"{PARTNER}/x", key=secret, source=OTHER_ADDRESS)
        await refused(mapped, f"{PARTNER}/x", 403, "ip_not_allowed", key=secret)
        # The audit log names IPv4 clients in IPv4 form.
        denied = await mapped.call("GET", f"{PARTNER}/x", key=secret)

        async def logged() -> bool:
            return any(
                entry["request_id"] == denied.request_id and entry["ip"] == "127.0.0.1"
                for entry in await mapped.audit(admin)
            )

        await eventually(logged, "the refusal audited with the IPv4 address")


# -- X-User-Email-Verified ---------------------------------------------------------------------


async def verified_flag(site: Site, path: str, token: str) -> tuple[str, bool]:
    """The header the upstream got, and what the verifier makes of it."""
    _, seen = await forwarded(site, path, token=token)
    [flag] = received_headers(seen)["x-user-email-verified"]
    return flag, signed_context(site, seen).email_verified


async def a_pat(site: Site, access: str) -> str:
    created = await site.call("POST", TOKENS, token=access, body={"name": "ci"})
    assert created.status == 201, created.body
    return str(created.json()["token"])


async def test_email_verified_is_told_for_access_tokens_and_pats(site: Site) -> None:
    await site.add_user("vera@example.com")  # verified
    await site.core.accounts.create("una@example.com", PASSWORD, roles=("user",))  # not
    for address, expected in (("vera@example.com", "true"), ("una@example.com", "false")):
        access = (await site.login(address))["access_token"]
        flag = (expected, expected == "true")
        assert await verified_flag(site, f"{PRIVATE}/me", access) == flag, address
        assert await verified_flag(site, f"{DEVELOPER}/me", await a_pat(site, access)) == flag


async def test_a_changed_address_is_not_verified_until_said_so(site: Site) -> None:
    """An admin changes a verified user's e-mail: the new address was never proven, and the
    tokens that said "verified" for the old one die with the change."""
    admin = await site.admin()
    user_id = await site.add_user("old@example.com")
    before = (await site.login("old@example.com"))["access_token"]
    assert await verified_flag(site, f"{PRIVATE}/me", before) == ("true", True)
    changed = await site.call(
        "PATCH", f"/api/v1/users/{user_id}", token=admin, body={"email": "new@example.com"}
    )
    assert changed.status == 200, changed.body
    assert changed.json()["user"]["email_verified"] is False
    await refused(site, f"{PRIVATE}/me", 401, "token_revoked", token=before)
    after = (await site.login("new@example.com"))["access_token"]
    assert await verified_flag(site, f"{PRIVATE}/me", after) == ("false", False)
    confirmed = await site.call(
        "PATCH", f"/api/v1/users/{user_id}", token=admin, body={"email_verified": True}
    )
    assert confirmed.status == 200, confirmed.body
    again = (await site.login("new@example.com"))["access_token"]
    assert await verified_flag(site, f"{PRIVATE}/me", again) == ("true", True)


async def test_unverifying_a_user_ends_the_tokens_that_said_verified(site: Site) -> None:
    admin = await site.admin()
    user_id = await site.add_user("vera@example.com")
    access = (await site.login("vera@example.com"))["access_token"]
    pat = await a_pat(site, access)
    assert await verified_flag(site, f"{DEVELOPER}/me", pat) == ("true", True)
    changed = await site.call(
        "PATCH", f"/api/v1/users/{user_id}", token=admin, body={"email_verified": False}
    )
    assert changed.status == 200, changed.body
    await refused(site, f"{PRIVATE}/me", 401, "token_revoked", token=access)
    # The PAT lives on (it is not a session); its context now says what is true.
    assert await verified_flag(site, f"{DEVELOPER}/me", pat) == ("false", False)


async def test_an_sdk_users_address_is_the_tenants_word_never_verified(site: Site) -> None:
    admin = await site.admin()
    _, key = await site.tenant_with_key(admin)
    opened = await site.sdk_session(key["key"], "cust-1")
    assert opened.status == 200, opened.body
    access = opened.json()["access_token"]
    _, seen = await forwarded(site, f"{PRIVATE}/me", token=access)
    assert received_headers(seen)["x-user-email"] == ["end@customer.example"]
    assert received_headers(seen)["x-user-email-verified"] == ["false"]
    assert signed_context(site, seen).email_verified is False
