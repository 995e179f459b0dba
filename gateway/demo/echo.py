"""An HTTP echo server: answers every request with what it received, as JSON, and echoes
websocket messages on any path.

Used by `gateway demo` and handy for seeing what the gateway sends upstream (context headers,
forwarding headers, the rewritten path). On its own, as the sample upstream of the deployment
set-ups (docs/operations/deploy.md): `python -m gateway.demo.echo --host 0.0.0.0 --port 9001`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

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


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the echo app until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway.demo.echo", description="An HTTP and websocket echo server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args(argv)
    web.run_app(echo_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
