"""Cookie sessions (GATEWAY_SESSION_COOKIES; docs/authentication.md, Cookie sessions), through a
running gateway with the shipped routes.yaml: the refresh token only ever in the cookie, the
cookie's attributes, refresh and logout by cookie held to the CSRF rule, a bad or repeated cookie
counted as absent, logout clearing it; login and signup from a page off the whitelist refused
(login CSRF), and their bodies JSON only. The same flows in a real browser are in
tests/gateway/test_browser_sessions.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession, DummyCookieJar

from auth_core.service import CallInfo
from tests.support import RunningGateway, auth_settings, quiet_settings, running_gateway

SHIPPED = Path(__file__).resolve().parents[2] / "routes.yaml"
APP_ORIGIN = "http://127.0.0.1:8080"  # in the shipped routes.yaml's `origins`
TENANT_ORIGIN = "https://shop.example.com"  # a tenant's: not the platform user's
FOREIGN_ORIGIN = "http://127.0.0.1:6666"
NAME = "__Secure-gateway-refresh"
EMAIL, PASSWORD = "browser@example.com", "correct horse battery"
# What a page of the app sends with every cookie-authenticated write.
PAGE = {"Origin": APP_ORIGIN, "X-Requested-With": "fetch"}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = quiet_settings(auth=auth_settings(tmp_path, session_cookies=True))
    async with running_gateway(SHIPPED.read_text(), tmp_path, settings) as gw:
        await gw.core.tenants.create("Shop", [TENANT_ORIGIN], [], None, CallInfo())
        await gw.core.accounts.signup(EMAIL, PASSWORD, None, CallInfo(), "")
        yield gw


@pytest.fixture
async def client() -> AsyncIterator[ClientSession]:
    # No jar: every test says which Cookie it sends.
    async with ClientSession(cookie_jar=DummyCookieJar()) as session:
        yield session


def cookie_of(answer: ClientResponse) -> tuple[str, dict[str, str]]:
    """The value and attributes (lower-case names) of the one Set-Cookie of our cookie."""
    values = [v for v in answer.headers.getall("Set-Cookie", []) if v.startswith(NAME + "=")]
    assert len(values) == 1, answer.headers
    first, *rest = (part.strip() for part in values[0].split(";"))
    attributes = {}
    for part in rest:
        name, _, value = part.partition("=")
        attributes[name.lower()] = value
    return first.partition("=")[2], attributes


async def login(gateway: RunningGateway, client: ClientSession) -> tuple[str, dict[str, Any]]:
    """The cookie's refresh token and the body of a login."""
    credentials = {"email": EMAIL, "password": PASSWORD}
    async with client.post(gateway.url + "/api/v1/auth/login", json=credentials) as answer:
        assert answer.status == 200, await answer.text()
        token, _ = cookie_of(answer)
        return token, await answer.json()


async def refresh(
    gateway: RunningGateway, client: ClientSession, headers: dict[str, str]
) -> ClientResponse:
    async with client.post(gateway.url + "/api/v1/auth/refresh", headers=headers) as answer:
        await answer.read()
        return answer


async def test_login_sets_the_cookie_and_keeps_the_refresh_token_out_of_the_body(
    gateway: RunningGateway, client: ClientSession
) -> None:
    credentials = {"email": EMAIL, "password": PASSWORD}
    async with client.post(gateway.url + "/api/v1/auth/login", json=credentials) as answer:
        assert answer.status == 200
        body = await answer.json()
        token, attributes = cookie_of(answer)
    assert "refresh_token" not in body
    assert token not in str(body)
    assert body["access_token"].count(".") == 2  # the access token stays a bearer JWT
    assert token.startswith("gwr_")
    assert attributes == {
        "max-age": str(7 * 86400),
        "path": "/api/v1/auth",
        "secure": "",
        "httponly": "",
        "samesite": "Strict",
    }


async def test_refresh_by_cookie_turns_the_token_and_the_old_one_is_spent(
    gateway: RunningGateway, client: ClientSession
) -> None:
    token, _ = await login(gateway, client)
    answer = await refresh(gateway, client, {**PAGE, "Cookie": f"{NAME}={token}"})
    assert answer.status == 200
    body = await answer.json()
    assert "refresh_token" not in body
    assert body["access_token"]
    turned, attributes = cookie_of(answer)
    assert turned != token
    assert attributes["path"] == "/api/v1/auth"
    # The spent token again: reuse, the session ends (docs/authentication.md).
    again = await refresh(gateway, client, {**PAGE, "Cookie": f"{NAME}={token}"})
    assert again.status == 401
    assert (await again.json())["error"] == "invalid_token"
    ended = await refresh(gateway, client, {**PAGE, "Cookie": f"{NAME}={turned}"})
    assert ended.status == 401


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": APP_ORIGIN}, id="no-x-requested-with"),
        pytest.param({"Origin": FOREIGN_ORIGIN, "X-Requested-With": "x"}, id="foreign-origin"),
        pytest.param({"Origin": TENANT_ORIGIN, "X-Requested-With": "x"}, id="another-whitelist"),
        pytest.param({"Origin": "null", "X-Requested-With": "x"}, id="origin-null"),
        pytest.param({"X-Requested-With": "x"}, id="no-origin-no-referer"),
        pytest.param(
            {"Referer": FOREIGN_ORIGIN + "/page", "X-Requested-With": "x"}, id="foreign-referer"
        ),
    ],
)
async def test_a_cookie_write_without_both_proofs_is_refused_and_spends_nothing(
    gateway: RunningGateway, client: ClientSession, headers: dict[str, str]
) -> None:
    token, _ = await login(gateway, client)
    for path in ("/api/v1/auth/refresh", "/api/v1/auth/logout"):
        url = gateway.url + path
        async with client.post(url, headers={**headers, "Cookie": f"{NAME}={token}"}) as answer:
            assert answer.status == 403, await answer.text()
            assert (await answer.json())["error"] == "csrf_refused"
            assert "Set-Cookie" not in answer.headers
    # Neither spent the token nor ended the session.
    answer = await refresh(gateway, client, {**PAGE, "Cookie": f"{NAME}={token}"})
    assert answer.status == 200


async def test_a_referer_on_the_whitelist_stands_in_for_a_missing_origin(
    gateway: RunningGateway, client: ClientSession
) -> None:
    token, _ = await login(gateway, client)
    headers = {"Referer": APP_ORIGIN + "/app?x=1", "X-Requested-With": "x"}
    answer = await refresh(gateway, client, {**headers, "Cookie": f"{NAME}={token}"})
    assert answer.status == 200


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(None, id="none"),
        pytest.param(f"{NAME}=", id="empty"),
        pytest.param(f"{NAME}=gwr_short", id="malformed"),
        pytest.param(f"{NAME}=gwr_{'A' * 43}", id="unknown"),
        pytest.param(f"{NAME}=TOKEN; {NAME}=TOKEN", id="twice"),
        pytest.param("__Host-gateway-refresh=TOKEN", id="another-name"),
    ],
)
async def test_a_bad_cookie_is_as_none(
    gateway: RunningGateway, client: ClientSession, cookie: str | None
) -> None:
    token, _ = await login(gateway, client)
    headers = dict(PAGE)
    if cookie is not None:
        headers["Cookie"] = cookie.replace("TOKEN", token)
    answer = await refresh(gateway, client, headers)
    assert answer.status == 401, await answer.text()
    # An unknown well-formed token is read and refused; anything else is as no cookie at all.
    expected = "invalid_token" if cookie and "A" * 43 in cookie else "missing_credentials"
    assert (await answer.json())["error"] == expected


async def test_logout_by_cookie_ends_the_session_and_clears_the_cookie(
    gateway: RunningGateway, client: ClientSession
) -> None:
    token, body = await login(gateway, client)
    cookie = {"Cookie": f"{NAME}={token}"}
    async with client.post(gateway.url + "/api/v1/auth/logout", headers={**PAGE, **cookie}) as a:
        assert a.status == 204, await a.text()
        value, attributes = cookie_of(a)
    assert value == ""
    assert attributes["max-age"] == "0"
    assert attributes["path"] == "/api/v1/auth"
    answer = await refresh(gateway, client, {**PAGE, **cookie})
    assert answer.status == 401
    bearer = {"Authorization": "Bearer " + body["access_token"]}
    async with client.get(gateway.url + "/api/v1/auth/me", headers=bearer) as me:
        assert me.status == 401  # the access token of the session died with it


async def test_logout_by_bearer_clears_the_cookie_too(
    gateway: RunningGateway, client: ClientSession
) -> None:
    token, body = await login(gateway, client)
    headers = {"Authorization": "Bearer " + body["access_token"]}
    async with client.post(gateway.url + "/api/v1/auth/logout", headers=headers) as answer:
        assert answer.status == 204
        assert cookie_of(answer)[1]["max-age"] == "0"
    answer = await refresh(gateway, client, {**PAGE, "Cookie": f"{NAME}={token}"})
    assert answer.status == 401


async def test_without_the_setting_the_refresh_token_stays_in_the_body(
    tmp_path: Path, client: ClientSession
) -> None:
    settings = quiet_settings(auth=auth_settings(tmp_path))
    async with running_gateway(SHIPPED.read_text(), tmp_path, settings) as gw:
        await gw.core.accounts.signup(EMAIL, PASSWORD, None, CallInfo(), "")
        credentials = {"email": EMAIL, "password": PASSWORD}
        async with client.post(gw.url + "/api/v1/auth/login", json=credentials) as answer:
            assert answer.status == 200
            assert "Set-Cookie" not in answer.headers
            token = (await answer.json())["refresh_token"]
        # A cookie means nothing then: the body's token is what refresh reads.
        headers = {**PAGE, "Cookie": f"{NAME}={token}"}
        async with client.post(gw.url + "/api/v1/auth/refresh", headers=headers) as answer:
            assert answer.status == 400
        async with client.post(
            gw.url + "/api/v1/auth/refresh", json={"refresh_token": token}
        ) as answer:
            assert answer.status == 200
            assert "refresh_token" in await answer.json()


# -- login CSRF: a page elsewhere planting the attacker's session ------------------------------

CREDENTIALS = {"email": EMAIL, "password": PASSWORD}
OPENINGS = [
    ("/api/v1/auth/login", CREDENTIALS),
    ("/api/v1/auth/signup", {"email": "other@example.com", "password": PASSWORD}),
]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": FOREIGN_ORIGIN, "X-Requested-With": "x"}, id="foreign-origin"),
        pytest.param({"Origin": APP_ORIGIN}, id="no-x-requested-with"),
        pytest.param({"Origin": "null", "X-Requested-With": "x"}, id="origin-null"),
        pytest.param(
            {"Referer": FOREIGN_ORIGIN + "/page", "X-Requested-With": "x"}, id="foreign-referer"
        ),
        pytest.param({"Referer": "not a url", "X-Requested-With": "x"}, id="malformed-referer"),
    ],
)
@pytest.mark.parametrize(("path", "document"), OPENINGS, ids=["login", "signup"])
async def test_a_login_from_a_page_off_the_whitelist_is_refused_and_sets_no_cookie(
    gateway: RunningGateway,
    client: ClientSession,
    headers: dict[str, str],
    path: str,
    document: dict[str, str],
) -> None:
    async with client.post(gateway.url + path, json=document, headers=headers) as answer:
        assert answer.status == 403, await answer.text()
        assert (await answer.json())["error"] == "csrf_refused"
        assert "Set-Cookie" not in answer.headers
    # Nothing was done: no account for the signup, no session for the login.
    assert await gateway.core.store.users.by_email("other@example.com") is None
    user = await gateway.core.store.users.by_email(EMAIL)
    assert user is not None
    # (Ending every session of the user returns those it ended: none was opened.)
    assert await gateway.core.store.sessions.revoke_all(user.id, "test") == []


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(PAGE, id="whitelisted-origin"),
        pytest.param({"Origin": TENANT_ORIGIN, "X-Requested-With": "x"}, id="a-tenants-origin"),
        pytest.param(
            {"Referer": APP_ORIGIN + "/sign-in", "X-Requested-With": "x"}, id="whitelisted-referer"
        ),
        pytest.param({}, id="no-page-at-all"),  # curl, a backend: no Origin, no Referer
    ],
)
async def test_a_login_from_a_whitelisted_page_or_from_no_page_sets_the_cookie(
    gateway: RunningGateway, client: ClientSession, headers: dict[str, str]
) -> None:
    url = gateway.url + "/api/v1/auth/login"
    async with client.post(url, json=CREDENTIALS, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
        token, _ = cookie_of(answer)
    assert token.startswith("gwr_")
    signup = {"email": "other@example.com", "password": PASSWORD}
    async with client.post(gateway.url + "/api/v1/auth/signup", json=signup, headers=headers) as a:
        assert a.status == 201, await a.text()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
@pytest.mark.parametrize(("path", "document"), OPENINGS, ids=["login", "signup"])
async def test_with_cookie_sessions_login_and_signup_take_json_only(
    gateway: RunningGateway,
    client: ClientSession,
    content_type: str | None,
    path: str,
    document: dict[str, str],
) -> None:
    # A JSON text under another type: what a cross-site form (enctype="text/plain") can send.
    body = json.dumps(document).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    async with client.post(
        gateway.url + path, data=body, headers=headers, skip_auto_headers=["Content-Type"]
    ) as answer:
        assert answer.status == 415, await answer.text()
        problem = await answer.json()
        assert problem["error"] == "invalid_request"
        assert "application/json" in problem["detail"]
        assert "Set-Cookie" not in answer.headers
    # The JSON type with a charset is JSON.
    async with client.post(
        gateway.url + path,
        data=body,
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    ) as answer:
        assert answer.status in (200, 201), await answer.text()


async def test_without_cookie_sessions_the_body_type_is_not_checked(
    tmp_path: Path, client: ClientSession
) -> None:
    # Nothing planted, nothing to forge: the API parses JSON whatever the type, as always.
    settings = quiet_settings(auth=auth_settings(tmp_path))
    async with running_gateway(SHIPPED.read_text(), tmp_path, settings) as gw:
        await gw.core.accounts.signup(EMAIL, PASSWORD, None, CallInfo(), "")
        async with client.post(
            gw.url + "/api/v1/auth/login",
            data=json.dumps(CREDENTIALS),
            headers={"Content-Type": "text/plain", "Origin": FOREIGN_ORIGIN},
        ) as answer:
            assert answer.status == 200, await answer.text()
