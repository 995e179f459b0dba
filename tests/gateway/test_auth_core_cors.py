"""CORS for the auth core's own endpoints with the shipped routes.yaml (docs/routes.md, CORS):
preflights of signup, login, refresh, `me`, logout and the SDK refresh answered for
an origin on the top-level `origins` or on a tenant's list and refused for any other; answers
marked for the listed origins only, refusals included; `Vary: Origin` on every answer;
`Access-Control-Allow-Credentials` only with cookie sessions. Through a running gateway.

Before this, `/api/v1/auth` (`auth: none`) had no CORS: its preflights reached the auth core,
which answered 405, and a browser page could not log in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, DummyCookieJar

from auth_core.service import CallInfo
from tests.support import RunningGateway, auth_settings, quiet_settings, running_gateway

SHIPPED = Path(__file__).resolve().parents[2] / "routes.yaml"
PLATFORM_ORIGIN = "http://127.0.0.1:8080"  # in the shipped routes.yaml's `origins`
TENANT_ORIGIN = "https://shop.example.com"
FOREIGN_ORIGIN = "https://evil.example.com"

ENDPOINTS = [
    pytest.param("POST", "/api/v1/auth/signup", id="signup"),
    pytest.param("POST", "/api/v1/auth/login", id="login"),
    pytest.param("POST", "/api/v1/auth/refresh", id="refresh"),
    pytest.param("GET", "/api/v1/auth/me", id="me"),
    pytest.param("POST", "/api/v1/auth/logout", id="logout"),
    pytest.param("POST", "/v1/sdk/refresh", id="sdk-refresh"),
]


@pytest.fixture(params=[False, True], ids=["bearer-sessions", "cookie-sessions"])
async def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[RunningGateway]:
    settings = quiet_settings(auth=auth_settings(tmp_path, session_cookies=request.param))
    async with running_gateway(SHIPPED.read_text(), tmp_path, settings) as gw:
        await gw.core.tenants.create("Shop", [TENANT_ORIGIN], [], None, CallInfo())
        yield gw


@pytest.fixture
async def client() -> AsyncIterator[ClientSession]:
    async with ClientSession(cookie_jar=DummyCookieJar()) as session:
        yield session


def cookie_sessions(gateway: RunningGateway) -> bool:
    return gateway.core.settings.session_cookies


def preflight(origin: str, method: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, x-requested-with, authorization",
    }


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("origin", [PLATFORM_ORIGIN, TENANT_ORIGIN], ids=["platform", "tenant"])
async def test_a_listed_origins_preflight_is_answered(
    gateway: RunningGateway, client: ClientSession, method: str, path: str, origin: str
) -> None:
    async with client.options(gateway.url + path, headers=preflight(origin, method)) as answer:
        assert answer.status == 204, await answer.text()
        headers = answer.headers
        assert headers["Access-Control-Allow-Origin"] == origin
        assert method in headers["Access-Control-Allow-Methods"]
        allowed_headers = headers["Access-Control-Allow-Headers"].lower()
        assert "x-requested-with" in allowed_headers
        assert "authorization" in allowed_headers
        assert "Origin" in headers["Vary"]
        expected = "true" if cookie_sessions(gateway) else None
        assert headers.get("Access-Control-Allow-Credentials") == expected


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_a_foreign_origins_preflight_is_refused(
    gateway: RunningGateway, client: ClientSession, method: str, path: str
) -> None:
    async with client.options(
        gateway.url + path, headers=preflight(FOREIGN_ORIGIN, method)
    ) as answer:
        assert answer.status == 403, await answer.text()
        assert (await answer.json())["error"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert "Access-Control-Allow-Credentials" not in answer.headers


@pytest.mark.parametrize(
    ("origin", "readable"),
    [
        pytest.param(PLATFORM_ORIGIN, True, id="platform"),
        pytest.param(TENANT_ORIGIN, True, id="tenant"),
        pytest.param(FOREIGN_ORIGIN, False, id="foreign"),
        pytest.param(None, False, id="no-origin"),
    ],
)
async def test_answers_and_refusals_are_marked_for_listed_origins_only(
    gateway: RunningGateway, client: ClientSession, origin: str | None, readable: bool
) -> None:
    """A login (200) and a `me` without a token (401: the page must read it to know it has to
    log in) carry the marks for a listed origin; nothing for another; Vary: Origin always.
    With cookie sessions a login from a foreign page is refused (login CSRF), unmarked too."""
    headers = {"Origin": origin, "X-Requested-With": "fetch"} if origin else {}
    email = "cors@example.com"
    await gateway.core.accounts.signup(email, "correct horse", None, CallInfo(), "")
    login = {"email": email, "password": "correct horse"}
    async with client.post(
        gateway.url + "/api/v1/auth/login", json=login, headers=headers
    ) as answer:
        refused = cookie_sessions(gateway) and origin == FOREIGN_ORIGIN
        assert answer.status == (403 if refused else 200), await answer.text()
        login_headers = answer.headers
    async with client.get(gateway.url + "/api/v1/auth/me", headers=headers) as answer:
        assert answer.status == 401, await answer.text()
        me_headers = answer.headers
    for marks in (login_headers, me_headers):
        assert "Origin" in marks.getall("Vary")
        assert marks.get("Access-Control-Allow-Origin") == (origin if readable else None)
        credentials = "true" if readable and cookie_sessions(gateway) else None
        assert marks.get("Access-Control-Allow-Credentials") == credentials
        assert len(marks.getall("Access-Control-Allow-Origin", [])) == (1 if readable else 0)


async def test_a_tenants_origin_added_later_is_answered_after_the_cache_is_voided(
    tmp_path: Path, client: ClientSession
) -> None:
    """The origin index is the auth core's cached one: a tenant's new origin counts once the
    change voids it, as on `jwt` routes."""
    settings = quiet_settings(auth=auth_settings(tmp_path))
    async with running_gateway(SHIPPED.read_text(), tmp_path, settings) as gw:
        later = "https://later.example.com"
        url = gw.url + "/api/v1/auth/login"
        async with client.options(url, headers=preflight(later, "POST")) as answer:
            assert answer.status == 403
        tenant = await gw.core.tenants.create("Later", [], [], None, CallInfo())
        await gw.core.tenants.update(tenant.id, {"origins": [later]}, None, CallInfo())
        async with client.options(url, headers=preflight(later, "POST")) as answer:
            assert answer.status == 204, await answer.text()
            assert answer.headers["Access-Control-Allow-Origin"] == later
