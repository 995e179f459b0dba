"""The login page in a real headless Chromium (tests/browser.py): a `browser: true` route sends
the browser to `/auth/login`, the form is filled in and submitted as a person would, and the
browser lands back on the page it asked for, served by a real upstream with the signed context
of that user; the page's logout button ends the session (docs/login-and-browsers.md).

Plain HTTP on loopback: Chromium counts http://127.0.0.1 as a secure context and keeps the
`Secure` session cookie from it (tests/gateway/test_browser_sessions.py says more).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from gateway.context import derive_keys, verify
from tests.browser import Browser, Page, chromium
from tests.gateway.test_login_page import EMAIL, PASSWORD, SESSION, gateway_with_user
from tests.support import RunningGateway, Upstream

FILL_AND_SUBMIT = f"""(() => {{
    document.getElementById("email").value = {json.dumps(EMAIL)};
    document.getElementById("password").value = {json.dumps(PASSWORD)};
    document.querySelector("form").submit();
}})()"""
CLICK_THE_BUTTON = 'document.querySelector("button[type=submit]").click()'


@pytest.fixture
async def gateway(upstream: Upstream, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway_with_user(upstream, tmp_path, f"sqlite:///{tmp_path}/gateway.db") as gw:
        yield gw


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


async def session_cookies(tab: Page, gateway: RunningGateway) -> list[tuple[str, bool, bool]]:
    """(name, HttpOnly, Secure) of the login session cookies the browser holds for the host."""
    held = await tab.cookies(gateway.url + "/dashboard/reports")
    return [(c["name"], c["httpOnly"], c["secure"]) for c in held if c["name"] == SESSION]


async def test_the_login_page_round_trip_in_chromium(
    browser: Browser, gateway: RunningGateway, upstream: Upstream
) -> None:
    wanted = gateway.url + "/dashboard/reports?year=2026"
    # Chromium's navigation accepts text/html: sent to the login page, not answered 401.
    tab = await browser.open(wanted)
    login = urlsplit(await tab.evaluate("location.href"))
    assert login.path == "/auth/login"
    assert parse_qs(login.query)["return_to"] == ["/dashboard/reports?year=2026"]
    assert await tab.evaluate("document.querySelector('h1').textContent") == "Sign in"
    assert upstream.seen == []

    landed = await tab.follow(FILL_AND_SUBMIT)
    assert landed == wanted, await tab.evaluate("document.body.innerText")
    # The upstream served it, with the signed context of the user who logged in.
    seen = upstream.seen[-1]
    assert seen["path"] == "/dashboard/reports?year=2026"
    assert json.loads(await tab.evaluate("document.body.innerText"))["path"] == seen["path"]
    keyring = gateway.core.service_keyring
    context = verify(
        derive_keys(keyring.keys, "echo"),
        "echo",
        "GET",
        "/dashboard/reports?year=2026",
        dict(seen["headers"]),
    )
    user = await gateway.core.store.users.by_email(EMAIL)
    assert user is not None
    assert (context.auth_method, context.user_id, context.email) == ("cookie", user.id, EMAIL)
    # The session cookie is there, but no script of the page can read it.
    assert await session_cookies(tab, gateway) == [(SESSION, True, True)]
    assert SESSION not in await tab.evaluate("document.cookie")

    # Signed in: the route answers at once.
    served = len(upstream.seen)
    await tab.navigate(gateway.url + "/dashboard/other")
    assert await tab.evaluate("location.href") == gateway.url + "/dashboard/other"
    assert len(upstream.seen) == served + 1

    # The logout button.
    await tab.navigate(gateway.url + "/auth/logout")
    assert await tab.evaluate("document.querySelector('h1').textContent") == "Sign out"
    after_logout = urlsplit(await tab.follow(CLICK_THE_BUTTON))
    assert after_logout.path == "/auth/login"
    assert await session_cookies(tab, gateway) == []
    # The browser route sends the browser to log in again; the upstream sees nothing more.
    served = len(upstream.seen)
    await tab.navigate(wanted)
    again = urlsplit(await tab.evaluate("location.href"))
    assert again.path == "/auth/login"
    assert parse_qs(again.query)["return_to"] == ["/dashboard/reports?year=2026"]
    assert len(upstream.seen) == served


async def test_a_return_url_off_the_whitelist_lands_on_the_default_page(
    browser: Browser, gateway: RunningGateway
) -> None:
    query = urlencode({"return_to": "https://evil.example/steal"})
    tab = await browser.open(gateway.url + "/auth/login?" + query)
    landed = await tab.follow(FILL_AND_SUBMIT)
    assert landed == gateway.url + "/"  # GATEWAY_LOGIN_DEFAULT_RETURN
    assert await session_cookies(tab, gateway) == [(SESSION, True, True)]  # logged in all the same
