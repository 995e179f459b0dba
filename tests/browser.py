"""A real headless Chromium for tests, driven over the DevTools protocol.

Debian's `chromium` (`.ci/run` installs it) is started with `--remote-debugging-port=0`; it
prints the address of its DevTools websocket on stderr, and aiohttp's websocket client (a
dependency already) speaks the protocol: JSON commands with an id, answers with the same id
(https://chromedevtools.github.io/devtools-protocol/). No WebDriver in between, so nothing
new to install beyond the browser, and a page's `fetch()` is awaited as a promise.

    async with chromium() as browser:
        page = await browser.open("http://127.0.0.1:8001/")
        answer = await page.evaluate("fetch('/x').then(r => r.status)")
        landed = await page.follow("document.forms[0].submit()")  # the URL after redirects

Every browser gets a fresh profile in a temporary directory: no cookie outlives its test.
Without Chromium the test is skipped, or fails under CI=true.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
STARTUP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 20.0
_LISTENING = "DevTools listening on "


class BrowserError(Exception):
    """A DevTools command failed, or a script threw."""


def chromium_path() -> str:
    """The Chromium executable; skips the test (fails it under CI=true) when there is none."""
    wanted = os.environ.get("GATEWAY_TEST_CHROMIUM")
    names = (wanted,) if wanted else CHROMIUM_CANDIDATES
    found = next((path for name in names if (path := shutil.which(name))), None)
    if found is None:
        message = (
            f"Chromium is not installed ({' or '.join(names)}; Debian: apt-get install chromium)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


class Page:
    """One tab, attached through a flat DevTools session."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, session_id=self.session_id, **params)

    async def navigate(self, url: str) -> None:
        """Load `url` and wait for its load event."""
        loaded = self.browser.expect("Page.loadEventFired", self.session_id)
        answer = await self.send("Page.navigate", url=url)
        if answer.get("errorText"):
            raise BrowserError(f"{url}: {answer['errorText']}")
        await asyncio.wait_for(loaded, COMMAND_TIMEOUT)

    async def follow(self, expression: str) -> str:
        """Run `expression` (a form's submit, a click on a link), wait for the page it leads to
        to load (redirects followed), and return that page's URL."""
        loaded = self.browser.expect("Page.loadEventFired", self.session_id)
        await self.evaluate(expression)
        await asyncio.wait_for(loaded, COMMAND_TIMEOUT)
        return str(await self.evaluate("location.href"))

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited); a thrown
        error raises BrowserError with its text."""
        answer = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(str(text))
        return answer["result"].get("value")

    async def cookies(self, url: str) -> list[dict[str, Any]]:
        """The cookies the browser holds for `url`, HttpOnly ones included."""
        answer = await self.send("Network.getCookies", urls=[url])
        return list(answer["cookies"])


class Browser:
    """A running Chromium and its browser-level DevTools connection."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiting: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []
        self._reader = asyncio.create_task(self._read())

    async def open(self, url: str) -> Page:
        """A new tab showing `url` (loaded)."""
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        page = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Network.enable")
        await page.navigate(url)
        return page

    def expect(self, event: str, session_id: str | None) -> asyncio.Future[dict[str, Any]]:
        """A future of the next `event` of a session (register before causing it)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, session_id, future))
        return future

    async def send(
        self, method: str, *, session_id: str | None = None, **params: Any
    ) -> dict[str, Any]:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self.socket.send_str(json.dumps(message))
        answer = await asyncio.wait_for(future, COMMAND_TIMEOUT)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return dict(answer.get("result", {}))

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            for entry in list(self._waiting):
                event, session_id, waiter = entry
                if data.get("method") == event and session_id in (None, data.get("sessionId")):
                    self._waiting.remove(entry)
                    if not waiter.done():
                        waiter.set_result(data.get("params", {}))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BrowserError("the browser closed its DevTools connection"))

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self.socket.close()


async def _devtools_address(process: asyncio.subprocess.Process) -> str:
    """The browser's websocket address, from the line Chromium prints on stderr when ready."""
    assert process.stderr is not None
    while line := await process.stderr.readline():
        text = line.decode(errors="replace").strip()
        if text.startswith(_LISTENING):
            return text[len(_LISTENING) :]
    raise BrowserError(f"Chromium exited (status {await process.wait()}) before listening")


async def _drain(stream: asyncio.StreamReader) -> None:
    """Read Chromium's chatter on stderr so that it never blocks on a full pipe."""
    while await stream.readline():
        pass


@asynccontextmanager
async def chromium(*flags: str) -> AsyncIterator[Browser]:
    """A headless Chromium with a fresh profile; `flags` are added to its command line."""
    executable = chromium_path()
    profile = tempfile.mkdtemp(prefix="gateway-chromium-")
    process = await asyncio.create_subprocess_exec(
        executable,
        "--headless=new",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        # Root in a container has no user namespace for Chromium's sandbox.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--disable-component-update",
        "--metrics-recording-only",
        *flags,
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    drain: asyncio.Task[None] | None = None
    try:
        address = await asyncio.wait_for(_devtools_address(process), STARTUP_TIMEOUT)
        assert process.stderr is not None
        drain = asyncio.create_task(_drain(process.stderr))
        async with aiohttp.ClientSession() as http:
            socket = await http.ws_connect(address, max_msg_size=0)
            browser = Browser(socket)
            try:
                yield browser
            finally:
                await browser.close()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
        shutil.rmtree(profile, ignore_errors=True)
