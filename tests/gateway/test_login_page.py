"""The login page and browser routes (docs/login-and-browsers.md): a real
gateway, a real upstream, SQLite and PostgreSQL; cookies are carried by hand, as a browser
would, so that every attribute the gateway sets is looked at."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from aiohttp import ClientSession, DummyCookieJar, TCPConnector, WSMsgType, WSServerHandshakeError

from auth_core.calls import CallInfo
from auth_core.errors import SettingsError
from gateway.config import Settings
from gateway.context import derive_keys, verify
from tests.gateway.test_websockets import socket_upstream
from tests.support import (
    Answer,
    RunningGateway,
    Upstream,
    assert_problem,
    auth_settings,
    quiet_settings,
    routes,
    running_gateway,
)

EMAIL = "ann@example.com"
PASSWORD = "correct horse battery staple"
APP = "https://app.example.com"
SESSION = "__Secure-gw_session"
LOGIN_NONCE = "__Host-gw_login"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON = {"Accept": "application/json"}
FORM = {**HTML, "Content-Type": "application/x-www-form-urlencoded"}
ROUTES = (
    "{name: dashboard, path: /dashboard, upstream: echo, auth: jwt, browser: true}",
    "{name: either, path: /either, upstream: echo, auth: any, browser: true}",
    "{name: api, path: /items, upstream: echo, auth: jwt}",
    "{name: login, path: /auth, upstream: auth_core, auth: none}",
    "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
)


def table(upstream: Upstream) -> str:
    return routes({"echo": [upstream.url]}, *ROUTES, extra=f'origins: ["{APP}"]')


@dataclass
class Browser:
    """A client that keeps the cookies a gateway sets, as a browser does (by name)."""

    http: ClientSession
    base: str
    jar: dict[str, str] = field(default_factory=dict)
    set_cookies: list[str] = field(default_factory=list)

    async def request(
        self, method: str, path: str, headers: Mapping[str, str] | None = None, **more: Any
    ) -> Answer:
        sent = dict(headers or {})
        if self.jar:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.jar.items())
        async with self.http.request(
            method, self.base + path, headers=sent, allow_redirects=False, **more
        ) as response:
            answer = Answer(response.status, response.headers.copy(), await response.read())
        self.set_cookies = answer.headers.getall("Set-Cookie", [])
        for line in self.set_cookies:
            cookie = SimpleCookie()
            cookie.load(line)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0":
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = morsel.value
        return answer

    def attributes(self, name: str) -> dict[str, str]:
        """The attributes of the last Set-Cookie of `name` (lower-case keys)."""
        for line in self.set_cookies:
            if line.startswith(name + "="):
                parts = [part.strip() for part in line.split(";")[1:]]
                return {
                    key.lower(): value for key, _, value in (part.partition("=") for part in parts)
                }
        raise AssertionError(f"no Set-Cookie for {name}: {self.set_cookies}")

    async def login_form(self, return_to: str | None = None) -> dict[str, str]:
        """GET the login page; the form's hidden fields."""
        query = "?" + urlencode({"return_to": return_to}) if return_to is not None else ""
        page = await self.request("GET", "/auth/login" + query, HTML)
        assert page.status == 200, page.body
        html = page.body.decode()
        return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))

    async def log_in(
        self, password: str = PASSWORD, return_to: str | None = None, **headers: str
    ) -> Answer:
        fields = await self.login_form(return_to)
        form = {"email": EMAIL, "password": password, **fields}
        return await self.request(
            "POST", "/auth/login", {**FORM, **headers}, data=urlencode(form).encode()
        )


@asynccontextmanager
async def browser_for(gateway: RunningGateway) -> AsyncIterator[Browser]:
    async with ClientSession(
        cookie_jar=DummyCookieJar(), connector=TCPConnector(force_close=True)
    ) as http:
        yield Browser(http, gateway.url)


def settings_for(directory: Path, database_url: str, **auth: Any) -> Settings:
    return quiet_settings(auth=auth_settings(directory, database_url=database_url, **auth))


@asynccontextmanager
async def gateway_with_user(
    upstream: Upstream, directory: Path, database_url: str, **auth: Any
) -> AsyncIterator[RunningGateway]:
    settings = settings_for(directory, database_url, **auth)
    async with running_gateway(table(upstream), directory, settings) as gateway:
        await gateway.core.accounts.create(EMAIL, PASSWORD, roles=("user",), verified=True)
        yield gateway


@pytest.fixture
async def gateway(
    upstream: Upstream, tmp_path: Path, database_url: str
) -> AsyncIterator[RunningGateway]:
    async with gateway_with_user(upstream, tmp_path, database_url) as running:
        yield running


@pytest.fixture
async def browser(gateway: RunningGateway) -> AsyncIterator[Browser]:
    async with browser_for(gateway) as made:
        yield made


def location(answer: Answer) -> str:
    assert answer.status == 303, (answer.status, answer.body)
    return answer.headers["Location"]


# -- the page ----------------------------------------------------------------------------------


async def test_the_page_is_plain_accessible_html_with_nothing_from_elsewhere(
    browser: Browser,
) -> None:
    page = await browser.request("GET", "/auth/login?return_to=%2Fdashboard%2Freports", HTML)
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    # Not no-referrer: a browser would send `Origin: null` with the form (the Chromium test).
    assert page.headers["Referrer-Policy"] == "same-origin"
    html = page.body.decode()
    assert '<html lang="en">' in html
    assert "<h1>Sign in</h1>" in html
    assert '<label for="email">' in html
    assert 'id="email"' in html
    assert '<label for="password">' in html
    assert 'id="password"' in html
    assert 'name="return_to" value="/dashboard/reports"' in html
    for outside in ("http:", "https:", "src=", "href=", "<script", "//"):
        assert outside not in html, outside
    nonce = browser.attributes(LOGIN_NONCE)
    assert {"secure", "httponly", "path", "samesite"} <= set(nonce)
    assert nonce["samesite"] == "Strict"
    assert "domain" not in nonce  # __Host-: this host only


# -- the round trip ----------------------------------------------------------------------------


async def test_a_browser_is_sent_to_log_in_and_back_and_then_served_by_cookie(
    gateway: RunningGateway, browser: Browser, upstream: Upstream
) -> None:
    first = await browser.request("GET", "/dashboard/reports?year=2026", HTML)
    login = urlsplit(location(first))
    assert login.path == "/auth/login"
    return_to = parse_qs(login.query)["return_to"][0]
    assert return_to == "/dashboard/reports?year=2026"

    answer = await browser.log_in(return_to=return_to)
    assert location(answer) == "/dashboard/reports?year=2026"
    cookie = browser.attributes(SESSION)
    assert "secure" in cookie
    assert "httponly" in cookie
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert 6 * 86400 < int(cookie["max-age"]) <= 7 * 86400  # the session's lifetime
    assert "domain" not in cookie  # no GATEWAY_LOGIN_COOKIE_DOMAIN: this host only
    assert browser.attributes(LOGIN_NONCE)["max-age"] == "0"  # the form's nonce is spent

    browser.jar["theme"] = "dark"  # one of the app's own cookies
    served = await browser.request("GET", "/dashboard/reports?year=2026", HTML)
    assert served.status == 200, served.body
    seen = upstream.seen[-1]
    headers = dict(seen["headers"])
    keyring = gateway.core.service_keyring
    context = verify(
        derive_keys(keyring.keys, "echo"), "echo", "GET", "/dashboard/reports?year=2026", headers
    )
    user = await gateway.core.store.users.by_email(EMAIL)
    assert user is not None
    assert (context.auth_method, context.user_id, context.email) == ("cookie", user.id, EMAIL)
    assert context.roles == ("user",)
    assert context.session_id is not None
    # The app's own cookies pass; the session cookie is the gateway's credential and stays.
    assert headers["Cookie"] == "theme=dark"

    # The same cookie on an auth: any browser route, and for forwardAuth.
    assert (await browser.request("GET", "/either", JSON)).status == 200
    validated = await browser.request(
        "GET",
        "/api/v1/auth/validate",
        {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/reports"},
    )
    assert validated.status == 200, validated.body
    assert validated.headers["X-User-Id"] == user.id
    assert validated.headers["X-Auth-Method"] == "cookie"

    # A route without `browser: true` does not take it.
    assert_problem(await browser.request("GET", "/items", JSON), 401, "missing_credentials")


async def test_an_absolute_return_url_on_the_whitelist_is_kept(browser: Browser) -> None:
    answer = await browser.log_in(return_to=f"{APP}/home?tab=2")
    assert location(answer) == f"{APP}/home?tab=2"


async def test_a_tenants_origin_is_a_whitelisted_return(
    gateway: RunningGateway, browser: Browser
) -> None:
    await gateway.core.tenants.create(
        "acme",
        ["https://*.acme.test"],
        [],
        None,
        CallInfo(ip=None, user_agent=None, request_id="t"),
    )
    answer = await browser.log_in(return_to="https://dash.acme.test/x")
    assert location(answer) == "https://dash.acme.test/x"


OPEN_REDIRECTS = [
    ("an origin off the whitelist", "https://evil.example/x"),
    ("a look-alike host", "https://app.example.com.evil.example/"),
    ("user info before another host", "https://app.example.com@evil.example/"),
    ("a relative-protocol URL", "//evil.example/x"),
    ("a backslash browsers read as a slash", "/\\evil.example"),
    ("javascript:", "javascript:alert(document.cookie)"),
    ("data:", "data:text/html,<script>alert(1)</script>"),
    ("a malformed URL", "http://[::1"),
    ("a relative path", "dashboard"),
    ("a control character", "/dash\r\nboard"),
    ("a raw non-ASCII character", "/dash\u2028board"),
    ("http where https is listed", "http://app.example.com/"),
]


@pytest.mark.parametrize(
    "return_to", [case[1] for case in OPEN_REDIRECTS], ids=[case[0] for case in OPEN_REDIRECTS]
)
async def test_no_open_redirect(browser: Browser, return_to: str) -> None:
    answer = await browser.log_in(return_to=return_to)
    assert location(answer) == "/"  # GATEWAY_LOGIN_DEFAULT_RETURN
    assert SESSION in browser.jar  # logged in all the same


# -- wrong passwords, delays, confirmed addresses ----------------------------------------------


async def test_a_wrong_password_shows_the_form_again_and_counts_towards_the_delay(
    browser: Browser,
) -> None:
    for _ in range(5):
        wrong = await browser.log_in(password="not the password at all")
        assert wrong.status == 401
        html = wrong.body.decode()
        assert 'role="alert"' in html
        assert "not right" in html
        assert f'value="{EMAIL}"' in html  # the address typed is kept
        assert SESSION not in browser.jar
    held = await browser.log_in()  # the right password, but the pair has to wait now
    assert held.status == 429
    assert int(held.headers["Retry-After"]) >= 1
    assert 'role="alert"' in held.body.decode()
    assert SESSION not in browser.jar


async def test_wrong_passwords_on_the_page_count_towards_a_ban(
    upstream: Upstream, tmp_path: Path, database_url: str
) -> None:
    async with (
        gateway_with_user(upstream, tmp_path, database_url, ban_threshold=3) as gateway,
        browser_for(gateway) as browser,
    ):
        for _ in range(3):
            assert (await browser.log_in(password="not the password at all")).status == 401
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not gateway.core.revoked.banned_for("127.0.0.1", time.time()):
            assert loop.time() < deadline, "three wrong passwords did not ban the address"
            await asyncio.sleep(0.01)
        # Banned: every route refuses the address, the login page included.
        assert_problem(await browser.request("GET", "/dashboard", JSON), 429, "rate_limited")
        assert_problem(await browser.request("GET", "/auth/login", HTML), 429, "rate_limited")


async def test_an_unconfirmed_address_may_not_log_in_when_required(
    upstream: Upstream, tmp_path: Path, database_url: str
) -> None:
    async with (
        gateway_with_user(upstream, tmp_path, database_url) as gateway,
        browser_for(gateway) as browser,
    ):
        await gateway.core.accounts.create("new@example.com", PASSWORD, verified=False)
        core = gateway.core
        core.settings = dataclasses.replace(core.settings, require_verified_email=True)
        core.sessions._settings = core.settings
        fields = await browser.login_form()
        form = {"email": "new@example.com", "password": PASSWORD, **fields}
        answer = await browser.request("POST", "/auth/login", FORM, data=urlencode(form).encode())
        assert answer.status == 403
        assert "confirm your e-mail address" in answer.body.decode()
        assert SESSION not in browser.jar


# -- login CSRF --------------------------------------------------------------------------------


async def test_a_form_not_from_this_page_is_refused(browser: Browser) -> None:
    fields = await browser.login_form()
    form = urlencode({"email": EMAIL, "password": PASSWORD, **fields}).encode()
    nonce = browser.jar.pop(LOGIN_NONCE)
    # No pre-session cookie (a cross-site form: SameSite=Strict keeps it back).
    refused = await browser.request("POST", "/auth/login", FORM, data=form)
    assert refused.status == 403
    assert SESSION not in browser.jar
    # Another browser's nonce with this form's token.
    browser.jar[LOGIN_NONCE] = nonce[:-2] + ("AA" if not nonce.endswith("AA") else "BB")
    assert (await browser.request("POST", "/auth/login", FORM, data=form)).status == 403
    # The right pair, but posted from another site.
    fields = await browser.login_form()
    form = urlencode({"email": EMAIL, "password": PASSWORD, **fields}).encode()
    foreign = await browser.request(
        "POST", "/auth/login", {**FORM, "Origin": "https://evil.example"}, data=form
    )
    assert foreign.status == 403
    assert SESSION not in browser.jar


# -- cookies that prove nothing ----------------------------------------------------------------


def tampered(value: str) -> list[str]:
    version, kid, session_id, signature = value.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return [
        f"{version}.{kid}.{session_id}.{flipped}",
        f"{version}.{kid}.ses_someone_else.{signature}",
        f"{version}.nokid.{session_id}.{signature}",
        "garbage",
        value + "x" * 300,
    ]


async def test_a_tampered_cookie_is_ignored(browser: Browser) -> None:
    await browser.log_in()
    good = browser.jar[SESSION]
    for bad in tampered(good):
        browser.jar[SESSION] = bad
        sent_away = await browser.request("GET", "/dashboard", HTML)
        assert urlsplit(location(sent_away)).path == "/auth/login"
        browser.jar[SESSION] = bad
        assert_problem(await browser.request("GET", "/dashboard", JSON), 401, "missing_credentials")
    browser.jar[SESSION] = good
    assert (await browser.request("GET", "/dashboard", HTML)).status == 200


# -- logout and revocation ---------------------------------------------------------------------


async def test_the_logout_button_ends_the_session_and_clears_the_cookie(
    browser: Browser,
) -> None:
    await browser.log_in()
    cookie = browser.jar[SESSION]
    page = await browser.request("GET", "/auth/logout", HTML)
    assert page.status == 200
    token = re.findall(r'name="csrf" value="([^"]*)"', page.body.decode())[0]
    answer = await browser.request(
        "POST", "/auth/logout", FORM, data=urlencode({"csrf": token}).encode()
    )
    assert urlsplit(location(answer)).path == "/auth/login"
    cleared = browser.attributes(SESSION)
    assert (cleared["max-age"], cleared["path"]) == ("0", "/")
    assert SESSION not in browser.jar
    browser.jar[SESSION] = cookie  # kept by a copy: the session is over all the same
    assert_problem(await browser.request("GET", "/dashboard", JSON), 401, "token_revoked")
    browser.jar[SESSION] = cookie
    again = await browser.request("GET", "/dashboard", HTML)
    assert urlsplit(location(again)).path == "/auth/login"
    assert browser.attributes(SESSION)["max-age"] == "0"  # the dead cookie is cleared


async def test_a_logout_from_another_site_is_refused(browser: Browser) -> None:
    await browser.log_in()
    for headers in (
        {"Origin": "https://evil.example", "X-Requested-With": "fetch"},  # off the whitelist
        {"Origin": APP},  # a form cannot send X-Requested-With
        {},
    ):
        refused = await browser.request("POST", "/auth/logout", {**JSON, **headers})
        assert_problem(refused, 403, "csrf_refused")
    assert (await browser.request("GET", "/dashboard", JSON)).status == 200
    ok = await browser.request(
        "POST", "/auth/logout", {**JSON, "Origin": APP, "X-Requested-With": "fetch"}
    )
    assert ok.status == 303
    assert SESSION not in browser.jar


async def test_the_api_logout_ends_the_cookie_session_too(browser: Browser) -> None:
    await browser.log_in()
    cookie = browser.jar[SESSION]
    async with browser.http.post(
        browser.base + "/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
    ) as response:
        token = (await response.json())["access_token"]
    answer = await browser.request(
        "POST", "/api/v1/auth/logout", {"Authorization": f"Bearer {token}"}
    )
    assert answer.status == 204
    assert browser.attributes(SESSION)["max-age"] == "0"
    browser.jar[SESSION] = cookie
    assert_problem(await browser.request("GET", "/dashboard", JSON), 401, "token_revoked")


async def test_a_revoked_session_stops_its_cookie_on_another_worker(
    upstream: Upstream, tmp_path: Path, database_url: str
) -> None:
    settings = settings_for(tmp_path, database_url)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        running_gateway(table(upstream), tmp_path / "a", settings) as first,
        running_gateway(table(upstream), tmp_path / "b", settings) as second,
        browser_for(first) as one,
        browser_for(second) as other,
    ):
        user = await first.core.accounts.create(EMAIL, PASSWORD, verified=True)
        await one.log_in()
        other.jar[SESSION] = one.jar[SESSION]
        assert (await other.request("GET", "/dashboard", JSON)).status == 200  # cached there
        # An admin ends every session of the user, through the first worker.
        await first.core.sessions.revoke_user(user.id, "admin")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            answer = await other.request("GET", "/dashboard", JSON)
            other.jar[SESSION] = one.jar[SESSION]
            if answer.status == 401:
                break
            assert loop.time() < deadline, "the other worker kept accepting the cookie"
            await asyncio.sleep(0.01)
        assert_problem(answer, 401, "token_revoked")
        assert_problem(await one.request("GET", "/dashboard", JSON), 401, "token_revoked")


# -- CSRF on browser routes --------------------------------------------------------------------


async def test_a_cookie_write_needs_a_whitelisted_origin_and_the_custom_header(
    browser: Browser, upstream: Upstream
) -> None:
    await browser.log_in()
    before = len(upstream.seen)
    for headers in (
        {"Origin": "https://evil.example", "X-Requested-With": "fetch"},
        {"Origin": APP},
        {"Referer": "https://evil.example/page", "X-Requested-With": "fetch"},
    ):
        refused = await browser.request("POST", "/dashboard/save", {**JSON, **headers}, data=b"x")
        assert_problem(refused, 403, "csrf_refused")
    assert len(upstream.seen) == before
    allowed = await browser.request(
        "POST", "/dashboard/save", {**JSON, "Origin": APP, "X-Requested-With": "fetch"}, data=b"x"
    )
    assert allowed.status == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == APP


async def test_a_bearer_token_on_a_browser_route_is_not_held_to_the_csrf_rule(
    browser: Browser,
) -> None:
    async with browser.http.post(
        browser.base + "/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
    ) as response:
        token = (await response.json())["access_token"]
    answer = await browser.request(
        "POST", "/dashboard/save", {"Authorization": f"Bearer {token}"}, data=b"x"
    )
    assert answer.status == 200
    # Without any credential an API client still gets the 401.
    browser.jar.clear()
    assert_problem(await browser.request("GET", "/dashboard", JSON), 401, "missing_credentials")


# -- forwardAuth --------------------------------------------------------------------------------


async def test_forward_auth_sends_a_browser_to_log_in_only_when_asked(browser: Browser) -> None:
    forwarded = {
        **HTML,
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "app.example.com",
        "X-Forwarded-Uri": "/reports?q=1",
    }
    plain = await browser.request("GET", "/api/v1/auth/validate", forwarded)
    assert_problem(plain, 401, "missing_credentials")  # nginx auth_request takes only 401/403
    asked = await browser.request("GET", "/api/v1/auth/validate?login=redirect", forwarded)
    login = urlsplit(location(asked))
    assert parse_qs(login.query)["return_to"] == [f"{APP}/reports?q=1"]
    # That return URL is on the whitelist: the login sends the browser back there.
    answer = await browser.log_in(return_to=f"{APP}/reports?q=1")
    assert location(answer) == f"{APP}/reports?q=1"
    validated = await browser.request("GET", "/api/v1/auth/validate?login=redirect", forwarded)
    assert validated.status == 200


async def test_forward_auth_holds_a_cookie_write_to_the_csrf_rule(browser: Browser) -> None:
    await browser.log_in()
    write = {"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/save"}
    refused = await browser.request(
        "GET", "/api/v1/auth/validate", {**write, "Origin": "https://evil.example"}
    )
    assert_problem(refused, 403, "csrf_refused")
    allowed = await browser.request(
        "GET", "/api/v1/auth/validate", {**write, "Origin": APP, "X-Requested-With": "x"}
    )
    assert allowed.status == 200


# -- settings ----------------------------------------------------------------------------------


async def test_the_cookie_domain_and_login_url_are_configurable(
    upstream: Upstream, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        {
            "GATEWAY_LOGIN_COOKIE_DOMAIN": ".Example.com",
            "GATEWAY_LOGIN_URL": "https://auth.example.com/auth/login",
            "GATEWAY_LOGIN_DEFAULT_RETURN": "/welcome",
        }
    )
    settings = dataclasses.replace(
        settings,
        access_log="off",
        watch_config=False,
        auth=auth_settings(tmp_path),
    )
    async with running_gateway(table(upstream), tmp_path, settings) as gateway:
        await gateway.core.accounts.create(EMAIL, PASSWORD, verified=True)
        async with browser_for(gateway) as browser:
            sent = await browser.request(
                "GET", "/dashboard/x", {**HTML, "Host": "dash.example.com"}
            )
            login = urlsplit(location(sent))
            assert (login.scheme, login.netloc, login.path) == (
                "https",
                "auth.example.com",
                "/auth/login",
            )
            assert parse_qs(login.query)["return_to"] == ["https://dash.example.com/dashboard/x"]
            answer = await browser.log_in(return_to="https://elsewhere.example/")
            assert location(answer) == "/welcome"
            assert browser.attributes(SESSION)["domain"] == "example.com"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_LOGIN_COOKIE_DOMAIN", "exa mple.com"),
        ("GATEWAY_LOGIN_COOKIE_DOMAIN", "com"),
        ("GATEWAY_LOGIN_URL", "//evil.example/login"),
        ("GATEWAY_LOGIN_URL", "javascript:alert(1)"),
        ("GATEWAY_LOGIN_DEFAULT_RETURN", "https://elsewhere.example/"),
    ],
)
def test_bad_login_settings_stop_start_up(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


# -- websockets --------------------------------------------------------------------------------


async def test_a_socket_opened_with_the_cookie_closes_at_logout(tmp_path: Path) -> None:
    socket_routes = (
        "{name: live, path: /live, upstream: sockets, auth: jwt, browser: true,"
        " websocket: true, strip_prefix: true}",
        "{name: login, path: /auth, upstream: auth_core, auth: none}",
    )
    async with socket_upstream() as sockets:
        text = routes({"sockets": [sockets.url]}, *socket_routes, extra=f'origins: ["{APP}"]')
        async with (
            running_gateway(text, tmp_path, quiet_settings(auth=auth_settings(tmp_path))) as gw,
            browser_for(gw) as browser,
        ):
            await gw.core.accounts.create(EMAIL, PASSWORD, verified=True)
            await browser.log_in()
            cookie = f"{SESSION}={browser.jar[SESSION]}"
            url = gw.url.replace("http://", "ws://") + "/live/ws"
            async with browser.http.ws_connect(
                url, headers={"Cookie": cookie, "Origin": APP}
            ) as ws:
                await ws.send_str("hello")
                assert (await ws.receive()).data == "hello"
                assert sockets.handshakes[-1]["headers"]["X-Auth-Method"] == "cookie"
                assert "Cookie" not in sockets.handshakes[-1]["headers"]
                ended = await browser.request(
                    "POST", "/auth/logout", {"Origin": APP, "X-Requested-With": "fetch"}
                )
                assert ended.status == 303
                message = await asyncio.wait_for(ws.receive(), 10)
                assert message.type == WSMsgType.CLOSE
                assert ws.close_code == 1008
            # A page elsewhere cannot open one with the cookie (cross-site websocket hijacking).
            await browser.log_in()
            cookie = f"{SESSION}={browser.jar[SESSION]}"
            with pytest.raises(WSServerHandshakeError) as refused:
                await browser.http.ws_connect(
                    url, headers={"Cookie": cookie, "Origin": "https://evil.example"}
                )
            assert refused.value.status == 403
