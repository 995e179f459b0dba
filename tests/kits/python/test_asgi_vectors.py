"""The shared vectors (kits/vectors/context-v2.json) through the ASGI middleware in front of
a real Starlette app: each valid case reaches the app with its context in
request.state.gateway, each other case is answered 401 problem+json and never reaches it.

Called as an ASGI server calls an app (a scope, receive, send), with the headers as the
server hands them over: byte pairs, repeats kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_context_asgi import GatewayContextMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.kits.python.support import vectors

VECTORS = vectors()
REACHED: list[str] = []


async def whoami(request: Request) -> JSONResponse:
    context = request.state.gateway
    REACHED.append(request.url.path)
    return JSONResponse({**context_fields(context)})


def context_fields(context: Any) -> dict[str, Any]:
    names = ("auth_method", "request_id", "user_id", "email", "email_verified", "roles")
    more = ("tenant_id", "session_id", "credential_id", "timestamp")
    fields = {name: getattr(context, name) for name in (*names, *more)}
    return {**fields, "roles": list(context.roles)}


APP = GatewayContextMiddleware(
    Starlette(routes=[Route("/{rest:path}", whoami, methods=["GET", "POST", "DELETE"])]),
    keys=VECTORS["keys"],
    audience=VECTORS["audience"],
    clock=lambda: float(VECTORS["now"]),
)


async def call(case: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    raw_path, _, query = case["path"].partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": case["method"],
        "scheme": "http",
        "path": raw_path,  # left encoded: the middleware must not read it
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [
            (name.lower().encode("latin-1"), value.encode("utf-8"))
            for name, value in case["headers"]
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await APP(scope, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, body


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda case: case["description"][:70])
async def test_each_vector_through_the_asgi_middleware(case: dict[str, Any]) -> None:
    REACHED.clear()
    status, headers, body = await call(case)
    if case["valid"]:
        assert status == 200, body
        assert json.loads(body) == case["context"]
        assert len(REACHED) == 1
        return
    assert status == 401, body
    assert headers["content-type"] == "application/problem+json"
    assert headers["www-authenticate"] == 'GatewayContext audience="billing"'
    problem = json.loads(body)
    assert problem["status"] == 401
    assert problem["title"] == "Unauthorized"
    assert problem["type"] == "urn:gateway:error:invalid_context"
    assert problem["error"] == "invalid_context"
    assert problem["detail"]
    assert REACHED == []


@pytest.mark.parametrize(
    ("extensions", "expected"),
    [
        pytest.param(
            {"websocket.http.response": {}},
            ["websocket.http.response.start", "websocket.http.response.body"],
            id="answered-401",
        ),
        pytest.param({}, ["websocket.close"], id="closed-4401"),
    ],
)
async def test_a_websocket_without_a_valid_context_is_refused(
    extensions: dict[str, Any], expected: list[str]
) -> None:
    """Where the server can answer a handshake with HTTP, 401 problem+json; elsewhere the
    handshake is closed with 4401 before it is accepted (the server answers it 403)."""
    [case] = [case for case in VECTORS["cases"] if "61 s old" in case["description"]]
    scope = {
        "type": "websocket",
        "path": "/invoices",
        "raw_path": b"/invoices",
        "query_string": b"page=2",
        "headers": [(n.lower().encode(), v.encode()) for n, v in case["headers"]],
        "extensions": extensions,
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    REACHED.clear()
    await APP(scope, receive, send)
    assert [message["type"] for message in sent] == expected
    if extensions:
        assert sent[0]["status"] == 401
        assert (
            json.loads(sent[1]["body"])["detail"] == "the signature is too old or from the future"
        )
    else:
        assert sent[0]["code"] == 4401
    assert REACHED == []
