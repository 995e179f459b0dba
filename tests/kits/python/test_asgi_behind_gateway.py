"""A real FastAPI app with the ASGI kit, served by uvicorn on loopback behind a real gateway:
what the gateway forwards passes with the caller in request.state.gateway and the `Caller`
dependency; a forged context, a context replayed to another path, an expired one and one
signed for another upstream are answered 401 problem+json by the service itself.

The service's clock is time.time() moved on when the test says (Clock): a replay 61 s later
without waiting a minute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientSession, WSServerHandshakeError
from fastapi import FastAPI, Request, WebSocket
from gateway_context_asgi import GatewayContextMiddleware
from gateway_context_asgi.dependencies import Caller, problem_responses, require_role

from auth_core.service import CallInfo
from tests.kits.python.support import Clock, gateway_settings, service_keys, uvicorn_server
from tests.support import FORGED_IDENTITY, fetch, routes, running_gateway

PASSWORD = "correct horse battery staple"


def service(clock: Clock, seen: list[dict[str, str]]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        GatewayContextMiddleware,
        keys=service_keys("billing"),
        audience="billing",
        exempt_paths=["/healthz"],
        clock=clock,
    )
    problem_responses(app)

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/invoices")
    async def invoices(caller: Caller, request: Request) -> dict[str, Any]:
        seen.append(dict(request.headers))
        assert request.state.gateway is caller
        return {
            "auth_method": caller.auth_method,
            "user_id": caller.user_id,
            "email": caller.email,
            "roles": list(caller.roles),
        }

    @app.delete("/invoices/{number}", dependencies=[require_role("admin")])
    async def delete(number: int) -> dict[str, int]:
        return {"deleted": number}

    @app.websocket("/feed")
    async def live(websocket: WebSocket, caller: Caller) -> None:
        await websocket.accept()
        await websocket.send_json({"user_id": caller.user_id, "roles": list(caller.roles)})
        await websocket.close()

    return app


TABLE = (
    "{name: billing, path: /invoices, upstream: billing, auth: jwt}",
    "{name: public, path: /healthz, upstream: billing, auth: none}",
    "{name: feed, path: /feed, upstream: billing, auth: jwt, websocket: true}",
    # The same service reached as the upstream `orders`: the gateway signs for orders.
    "{name: orders, path: /orders, upstream: orders, auth: jwt, strip_prefix: true}",
)


async def test_fastapi_behind_the_gateway(client: ClientSession, tmp_path: Path) -> None:
    clock, seen = Clock(), []
    async with uvicorn_server(service(clock, seen)) as port:
        url = f"http://127.0.0.1:{port}"
        table = routes({"billing": [url], "orders": [url]}, *TABLE)
        async with running_gateway(table, tmp_path, gateway_settings(tmp_path)) as gw:
            core = gw.core
            user = await core.accounts.create(
                "ada@example.com", PASSWORD, roles=("user", "billing"), verified=True
            )
            admin = await core.accounts.create(
                "root@example.com", PASSWORD, roles=("user", "admin"), verified=True
            )
            token = (await core.sessions.open(user, CallInfo())).access_token
            admin_token = (await core.sessions.open(admin, CallInfo())).access_token
            bearer = {"Authorization": f"Bearer {token}"}

            # Through the gateway: the caller is who the token says.
            answer = await fetch(client, "GET", gw.url + "/invoices?page=2", headers=bearer)
            assert answer.status == 200, answer.body
            assert answer.json() == {
                "auth_method": "jwt",
                "user_id": user.id,
                "email": "ada@example.com",
                "roles": ["user", "billing"],
            }
            # Roles are the service's to enforce with require_role: 403 problem+json.
            answer = await fetch(client, "DELETE", gw.url + "/invoices/7", headers=bearer)
            assert answer.status == 403, answer.body
            assert answer.headers["Content-Type"] == "application/problem+json"
            assert answer.json()["error"] == "insufficient_role"
            answer = await fetch(
                client,
                "DELETE",
                gw.url + "/invoices/7",
                headers={"Authorization": f"Bearer {admin_token}"},
            )
            assert (answer.status, answer.json()) == (200, {"deleted": 7})

            # A websocket through the gateway carries the caller too.
            async with client.ws_connect(
                gw.url.replace("http", "ws") + "/feed", headers=bearer
            ) as ws:
                assert await ws.receive_json() == {"user_id": user.id, "roles": ["user", "billing"]}

            # Signed for the upstream `orders`: this service (billing) refuses it.
            answer = await fetch(client, "GET", gw.url + "/orders/invoices", headers=bearer)
            assert_service_refused(answer, "another audience")

        # Straight to the service, without the gateway.
        signed = seen[0]
        answer = await fetch(client, "GET", url + "/invoices", headers=FORGED_IDENTITY)
        assert_service_refused(answer, "")
        answer = await fetch(client, "GET", url + "/invoices")
        assert_service_refused(answer, "no gateway signature")
        # The headers the service got, replayed at once to the path they were signed for:
        # they pass (the window is what bounds a replay) ...
        answer = await fetch(client, "GET", url + "/invoices?page=2", headers=signed)
        assert answer.status == 200, answer.body
        # ... replayed to another path, or with another query, they do not ...
        for path in ("/invoices", "/invoices?page=3"):
            answer = await fetch(client, "GET", url + path, headers=signed)
            assert_service_refused(answer, "does not match")
        # ... and 61 s later not even to their own path.
        clock.offset = 61
        answer = await fetch(client, "GET", url + "/invoices?page=2", headers=signed)
        assert_service_refused(answer, "too old")
        # A path the service exempts needs no context.
        answer = await fetch(client, "GET", url + "/healthz")
        assert (answer.status, answer.json()) == (200, {"status": "ok"})

        # A websocket straight to the service: its handshake is refused with 401.
        with pytest.raises(WSServerHandshakeError) as refused:
            async with aiohttp.ClientSession() as direct:
                await direct.ws_connect(url.replace("http", "ws") + "/feed")
        assert refused.value.status == 401


def assert_service_refused(answer: Any, reason: str) -> None:
    """The service's own 401 (not the gateway's: no request_id, error invalid_context)."""
    assert answer.status == 401, answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers["WWW-Authenticate"] == 'GatewayContext audience="billing"'
    problem = answer.json()
    assert (problem["status"], problem["error"]) == (401, "invalid_context"), problem
    assert reason in problem["detail"], problem
