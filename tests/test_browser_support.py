"""tests/browser.py itself: a missing Chromium skips a browser test, and fails it under CI=true
(a CI without the browser must not pass by testing nothing); a real one loads a page and runs
a script in it."""

from __future__ import annotations

import pytest
from aiohttp import web

from tests.browser import BrowserError, chromium, chromium_path
from tests.support import upstream_server

MISSING = "/nonexistent/chromium"


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [
        pytest.param("true", pytest.fail.Exception, id="ci-fails"),
        pytest.param("", pytest.skip.Exception, id="elsewhere-skips"),
    ],
)
def test_a_missing_chromium(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("GATEWAY_TEST_CHROMIUM", MISSING)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="Chromium is not installed"):
        chromium_path()


async def test_a_page_is_loaded_and_scripts_run_in_it() -> None:
    async with upstream_server() as server, chromium() as browser:
        page = await browser.open(server.url + "/hello")
        assert await page.evaluate("document.body.innerText.includes('/hello')") is True
        assert await page.evaluate("Promise.resolve(6 * 7)") == 42
        with pytest.raises(BrowserError, match="boom"):
            await page.evaluate("Promise.reject(new Error('boom'))")


async def form_and_redirect(request: web.Request) -> web.StreamResponse:
    """A form that posts to /login, which redirects (303) to /done?name=..."""
    if request.path == "/login":
        name = str((await request.post()).get("name", ""))
        raise web.HTTPSeeOther(f"/done?name={name}")
    if request.path == "/done":
        return web.Response(text=f"hello {request.query.get('name')}", content_type="text/html")
    form = '<form method="post" action="/login"><input name="name" value="ada"></form>'
    return web.Response(text=form, content_type="text/html")


async def test_a_form_submission_is_followed_through_its_redirect() -> None:
    async with upstream_server(form_and_redirect) as server, chromium() as browser:
        page = await browser.open(server.url + "/")
        landed = await page.follow("document.forms[0].submit()")
        assert landed == server.url + "/done?name=ada"
        assert await page.evaluate("document.body.innerText") == "hello ada"
