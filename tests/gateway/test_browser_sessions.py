"""A browser app against the gateway, in a real headless Chromium (tests/browser.py): a page
served from a whitelisted origin signs up, logs in, refreshes by cookie, calls a `jwt` route on
a real upstream and opens a websocket through the gateway, and logs out, all with `fetch()` and
`WebSocket` and the preflights Chromium sends for them; a page from a foreign origin gets its
preflight refused, its cookie-carrying POST is refused by the CSRF rule, and so is its attempt
to log the browser in as the attacker (docs/routes.md, CORS; The auth core, Cookie
sessions).

Everything is plain HTTP on loopback: the gateway on one port, the app's page on another, the
foreign page on a third. Chromium counts http://127.0.0.1 as a secure context ("potentially
trustworthy", W3C Secure Contexts section 3.2) and stores and sends a `Secure` cookie from it
(Chromium 156, checked in this test), so no TLS is needed. All three origins share the site
127.0.0.1 (ports do not make sites), so `SameSite=Strict` lets the foreign page's requests carry
the cookie: exactly the same-site forgery the CSRF rule is there to stop.

The routes.yaml is the shipped one, with its `origins` set to the app page's origin and its echo
upstream pointed at this test's.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, WSMsgType, web

from tests.browser import Browser, BrowserError, chromium
from tests.support import (
    RunningGateway,
    Upstream,
    auth_settings,
    quiet_settings,
    running_gateway,
    upstream_server,
)

SHIPPED = Path(__file__).resolve().parents[2] / "routes.yaml"
COOKIE = "__Secure-gateway-refresh"
EMAIL, PASSWORD = "page@example.com", "correct horse battery"
CREDENTIALS_JS = f"const credentials = {json.dumps({'email': EMAIL, 'password': PASSWORD})};"
PAGE_HTML = "<!doctype html><html><head><title>app</title></head><body>app</body></html>"


async def page(request: web.Request) -> web.StreamResponse:
    return web.Response(text=PAGE_HTML, content_type="text/html")


async def service(request: web.Request) -> web.StreamResponse:
    """The upstream of the `jwt` routes: says who the gateway said the caller is, over HTTP
    and over a websocket."""
    user = request.headers.get("X-User-Email", "")
    if request.headers.get("Upgrade", "").lower() == "websocket":
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type is WSMsgType.TEXT:
                await socket.send_str(f"{user} said {message.data}")
        return socket
    return web.json_response({"path": request.path, "user": user})


@pytest.fixture
async def app_page() -> AsyncIterator[Upstream]:
    async with upstream_server(page) as server:
        yield server


@pytest.fixture
async def foreign_page() -> AsyncIterator[Upstream]:
    async with upstream_server(page) as server:
        yield server


@pytest.fixture
async def gateway(tmp_path: Path, app_page: Upstream) -> AsyncIterator[RunningGateway]:
    async with upstream_server(service) as upstream:
        text = SHIPPED.read_text()
        text = re.sub(r"(?m)^origins: .*$", f'origins: ["{app_page.url}"]', text)
        text = text.replace("http://127.0.0.1:9001", upstream.url)
        settings = quiet_settings(auth=auth_settings(tmp_path, session_cookies=True))
        async with running_gateway(text, tmp_path, settings) as gw:
            yield gw


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


def script(gateway: RunningGateway, body: str) -> str:
    """An async function around `body`, with `G` (the gateway's URL) and `post(path, json?)`: a
    page's cookie-carrying fetch, as an app would write it."""
    return f"""(async () => {{
        const G = {json.dumps(gateway.url)};
        const post = (path, body) => fetch(G + path, {{
            method: "POST",
            credentials: "include",
            headers: {{"Content-Type": "application/json", "X-Requested-With": "fetch"}},
            body: body === undefined ? undefined : JSON.stringify(body),
        }});
        {body}
    }})()"""


async def auth_failures(client: ClientSession, gateway: RunningGateway, reason: str) -> float:
    """gateway_auth_failures_total{reason} from /metrics (loopback may read it)."""
    async with client.get(gateway.url + "/metrics") as answer:
        text = await answer.text()
    found = re.search(
        rf'^gateway_auth_failures_total\{{reason="{reason}"\}} (\S+)$', text, re.MULTILINE
    )
    return float(found.group(1)) if found else 0.0


async def log_in(browser: Browser, gateway: RunningGateway, origin: str) -> None:
    """Sign up and log in from the app's page (the cookie is then in the browser)."""
    tab = await browser.open(origin + "/")
    statuses = await tab.evaluate(
        script(
            gateway,
            CREDENTIALS_JS
            + """const signup = await post("/api/v1/auth/signup", credentials);
            const login = await post("/api/v1/auth/login", credentials);
            return [signup.status, login.status];""",
        )
    )
    assert statuses == [201, 200]


async def test_a_whitelisted_page_logs_in_refreshes_calls_and_logs_out(
    browser: Browser, gateway: RunningGateway, app_page: Upstream
) -> None:
    tab = await browser.open(app_page.url + "/")
    outcome: dict[str, Any] = await tab.evaluate(
        script(
            gateway,
            CREDENTIALS_JS
            + """const out = {};
            out.signup = (await post("/api/v1/auth/signup", credentials)).status;
            let answer = await post("/api/v1/auth/login", credentials);
            out.login = answer.status;
            let body = await answer.json();
            out.login_keys = Object.keys(body).sort();
            const first = body.access_token;
            out.page_cookies = document.cookie;
            answer = await fetch(G + "/api/v1/auth/me", {
                headers: {Authorization: "Bearer " + first}});
            out.me = [answer.status, (await answer.json()).user.email];
            answer = await post("/api/v1/auth/refresh");
            out.refresh = answer.status;
            body = await answer.json();
            out.refresh_keys = Object.keys(body).sort();
            const access = body.access_token;
            out.new_access_token = access !== first;
            answer = await fetch(G + "/private/orders", {
                headers: {Authorization: "Bearer " + access}});
            out.jwt_route = [answer.status, await answer.json()];
            out.websocket = await new Promise((resolve, reject) => {
                const socket = new WebSocket(G.replace("http:", "ws:") + "/socket/chat",
                                             ["bearer", access]);
                socket.onopen = () => socket.send("hello");
                socket.onmessage = (event) => { resolve(event.data); socket.close(); };
                socket.onerror = () => reject(new Error("the websocket failed"));
            });
            answer = await post("/api/v1/auth/logout");
            out.logout = answer.status;
            answer = await post("/api/v1/auth/refresh");
            out.refresh_after_logout = [answer.status, (await answer.json()).error];
            answer = await fetch(G + "/api/v1/auth/me", {
                headers: {Authorization: "Bearer " + access}});
            out.me_after_logout = answer.status;
            return out;""",
        )
    )
    assert outcome["signup"] == 201
    assert outcome["login"] == 200
    pair_keys = ["access_token", "expires_in", "session_id", "token_type", "user"]
    assert outcome["login_keys"] == pair_keys  # no refresh_token for the page's scripts
    assert outcome["refresh_keys"] == pair_keys
    assert outcome["page_cookies"] == ""  # HttpOnly, and scoped to the gateway's auth path
    assert outcome["me"] == [200, EMAIL]
    assert outcome["refresh"] == 200
    assert outcome["new_access_token"] is True
    assert outcome["jwt_route"] == [200, {"path": "/orders", "user": EMAIL}]
    assert outcome["websocket"] == f"{EMAIL} said hello"
    assert outcome["logout"] == 204
    # The cookie is gone, so refresh is as without one (and the page may read why).
    assert outcome["refresh_after_logout"] == [401, "missing_credentials"]
    assert outcome["me_after_logout"] == 401


async def test_the_cookie_is_httponly_secure_strict_and_gone_after_logout(
    browser: Browser, gateway: RunningGateway, app_page: Upstream
) -> None:
    await log_in(browser, gateway, app_page.url)
    tab = await browser.open(app_page.url + "/")
    held = await tab.cookies(gateway.url + "/api/v1/auth/refresh")
    assert [(c["name"], c["httpOnly"], c["secure"], c["sameSite"], c["path"]) for c in held] == [
        (COOKIE, True, True, "Strict", "/api/v1/auth")
    ]
    assert held[0]["value"].startswith("gwr_")
    # Not sent to anything else of the host (upstream routes never see it).
    assert await tab.cookies(gateway.url + "/private/orders") == []
    status = await tab.evaluate(
        script(gateway, 'return (await post("/api/v1/auth/logout")).status;')
    )
    assert status == 204
    assert await tab.cookies(gateway.url + "/api/v1/auth/refresh") == []


async def test_a_foreign_page_is_refused_its_preflight_and_its_forged_post(
    browser: Browser,
    gateway: RunningGateway,
    app_page: Upstream,
    foreign_page: Upstream,
    client: ClientSession,
) -> None:
    await log_in(browser, gateway, app_page.url)
    tab = await browser.open(foreign_page.url + "/")
    # The app's own request, from the foreign page: the preflight is refused (403), so the
    # browser never sends the POST and the page learns nothing.
    with pytest.raises(BrowserError, match="Failed to fetch"):
        await tab.evaluate(script(gateway, 'return (await post("/api/v1/auth/refresh")).status;'))
    # A forged write with no preflight: a no-cors POST (an opaque answer the page cannot read)
    # carries the cookie (same site) but neither a whitelisted Origin nor X-Requested-With.
    # What the gateway answered is read from its metrics: refused by the CSRF rule, which
    # proves the cookie was there (without one the refusal would be missing_credentials).
    before = await auth_failures(client, gateway, "csrf_refused")
    kind = await tab.evaluate(
        script(
            gateway,
            """const answer = await fetch(G + "/api/v1/auth/refresh", {
                method: "POST", mode: "no-cors", credentials: "include",
                headers: {"Content-Type": "text/plain"}, body: "{}"});
            return answer.type;""",
        )
    )
    assert kind == "opaque"
    assert await auth_failures(client, gateway, "csrf_refused") == before + 1
    # The same forgery against logout: refused as well, the session lives on.
    await tab.evaluate(
        script(
            gateway,
            """await fetch(G + "/api/v1/auth/logout", {
                method: "POST", mode: "no-cors", credentials: "include"});
            return null;""",
        )
    )
    assert await auth_failures(client, gateway, "csrf_refused") == before + 2
    app = await browser.open(app_page.url + "/")
    status = await app.evaluate(
        script(gateway, 'return (await post("/api/v1/auth/refresh")).status;')
    )
    assert status == 200


async def test_a_foreign_page_cannot_plant_its_session_by_logging_the_browser_in(
    browser: Browser,
    gateway: RunningGateway,
    foreign_page: Upstream,
    client: ClientSession,
) -> None:
    """Login CSRF: the foreign page logs the browser into the attacker's account, so that
    whatever the victim does next lands there. Only requests that need no preflight can be
    tried (a JSON body or X-Requested-With would need one, refused): a no-cors fetch with a
    text/plain or form body, and a plain HTML form. Each is refused by the CSRF rule, and the
    browser holds no session cookie after."""
    attacker = {"email": "attacker@example.com", "password": PASSWORD}
    async with client.post(gateway.url + "/api/v1/auth/signup", json=attacker) as answer:
        assert answer.status == 201
    tab = await browser.open(foreign_page.url + "/")
    before = await auth_failures(client, gateway, "csrf_refused")
    kinds = await tab.evaluate(
        script(
            gateway,
            f"const attacker = {json.dumps(attacker)};"
            + """const kinds = [];
            for (const body of [JSON.stringify(attacker), new URLSearchParams(attacker)]) {
                const answer = await fetch(G + "/api/v1/auth/login", {
                    method: "POST", mode: "no-cors", credentials: "include", body});
                kinds.push(answer.type);
            }
            return kinds;""",
        )
    )
    assert kinds == ["opaque", "opaque"]
    assert await auth_failures(client, gateway, "csrf_refused") == before + 2
    # A form the page submits: the tab goes to the gateway's answer.
    landed = await tab.follow(
        script(
            gateway,
            f"const attacker = {json.dumps(attacker)};"
            + """const form = document.createElement("form");
            form.method = "POST";
            form.action = G + "/api/v1/auth/login";
            for (const [name, value] of Object.entries(attacker)) {
                const input = document.createElement("input");
                input.name = name;
                input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();""",
        )
    )
    assert landed == gateway.url + "/api/v1/auth/login"
    assert json.loads(await tab.evaluate("document.body.innerText"))["error"] == "csrf_refused"
    assert await auth_failures(client, gateway, "csrf_refused") == before + 3
    assert await tab.cookies(gateway.url + "/api/v1/auth/refresh") == []
