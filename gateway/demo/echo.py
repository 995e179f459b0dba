"""An HTTP echo server: answers every request with what it received, as JSON, and echoes
websocket messages on any path.

Used by `gateway demo` and handy for seeing what the gateway sends upstream (context headers,
forwarding headers, the rewritten path).
"""

from __future__ import annotations

import json

from aiohttp import web

from auth_core import headers as h


async def echo(request: web.Request) -> web.StreamResponse:
    if request.headers.get(h.UPGRADE, "").lower() == "websocket":
        return await echo_socket(request)
    body = await request.read()
    document = {
        "method": request.method,
        "path": request.raw_path.split("?", 1)[0],
        "query": request.query_string,
        "headers": dict(request.headers.items()),
        "body": body.decode("utf-8", "replace"),
    }
    return web.Response(text=json.dumps(document, indent=2) + "\n", content_type="application/json")


async def echo_socket(request: web.Request) -> web.StreamResponse:
    """A websocket echo that also says who the gateway said the caller is."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json(
        {
            "connected_as": request.headers.get(h.X_USER_EMAIL)
            or request.headers.get(h.X_AUTH_METHOD),
            "connection": request.headers.get(h.X_REQUEST_ID),
        }
    )
    async for message in ws:
        if message.type == web.WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type == web.WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


def echo_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app
