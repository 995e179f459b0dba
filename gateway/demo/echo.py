"""An HTTP echo server: answers every request with what it received, as JSON.

Used by `gateway demo` and handy for seeing what the gateway sends upstream (context headers,
forwarding headers, the rewritten path).
"""

from __future__ import annotations

import json

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    document = {
        "method": request.method,
        "path": request.raw_path.split("?", 1)[0],
        "query": request.query_string,
        "headers": dict(request.headers.items()),
        "body": body.decode("utf-8", "replace"),
    }
    return web.Response(text=json.dumps(document, indent=2) + "\n", content_type="application/json")


def echo_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app
