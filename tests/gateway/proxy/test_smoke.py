"""The whole path once: client -> gateway -> real upstream -> back."""

from __future__ import annotations

from pathlib import Path

from aiohttp import ClientSession

from tests.support import Upstream, routes, running_gateway


async def test_get_is_forwarded_and_answered(
    upstream: Upstream, client: ClientSession, tmp_path: Path
) -> None:
    table = routes(
        {"echo": [upstream.url]}, "{name: echo, path: /echo, upstream: echo, auth: none}"
    )
    async with (
        running_gateway(table, tmp_path) as gw,
        client.get(f"{gw.url}/echo/hello?x=1") as response,
    ):
        assert response.status == 200
        document = await response.json()
    assert document["method"] == "GET"
    assert document["path"] == "/echo/hello?x=1"
    assert response.headers["X-Request-Id"]
