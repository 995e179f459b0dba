"""Websockets through the gateway, against a real aiohttp websocket upstream: echo of text,
binary and large messages; close codes both ways; the credential from a header, the
subprotocol list or the query, checked before any upgrade (401/403 as ordinary answers); an
upstream that refuses the upgrade; the stored context while open and gone after; the close on
revocation and on expiry; message size; back pressure."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, WSServerHandshakeError, web

from auth_core.service import CallInfo
from auth_core.tokens import Keyring
from gateway.context import ContextError, derive_key, verify
from tests.conftest import REDIS_URL
from tests.support import (
    LOOPBACK,
    RunningGateway,
    auth_settings,
    eventually,
    quiet_settings,
    routes,
    running_gateway,
    serving,
    start_gateway_process,
    tcp_server,
    two_gateways,
)

CALL = CallInfo()
PASSWORD = "correct horse battery"
SERVICE_SECRET = "s1:" + "w" * 48
ORIGIN = "https://app.example.com"


@dataclass
class SocketUpstream:
    url: str
    handshakes: list[dict[str, Any]] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    hold: asyncio.Event = field(default_factory=asyncio.Event)  # set: read; clear: stop reading


@asynccontextmanager
async def socket_upstream() -> AsyncIterator[SocketUpstream]:
    state = SocketUpstream("")
    state.hold.set()

    async def echo(request: web.Request) -> web.StreamResponse:
        state.handshakes.append(
            {"headers": dict(request.headers), "path": request.path_qs, "method": request.method}
        )
        ws = web.WebSocketResponse(protocols=("chat",), max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        while True:
            await state.hold.wait()
            message = await ws.receive()
            if message.type == WSMsgType.TEXT:
                if message.data == "close-4000":
                    await ws.close(code=4000, message=b"bye")
                    break
                await ws.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            else:
                break
        state.closes.append(ws.close_code)
        return ws

    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "not_here"}, status=403)

    app = web.Application()
    app.router.add_get("/ws", echo)
    app.router.add_get("/refuse", refuse)
    async with serving(app) as port:
        state.url = f"http://{LOOPBACK}:{port}"
        yield state


async def close_code(ws: ClientWebSocketResponse, *, within: float = 10) -> int | None:
    """Wait for the close frame the gateway sends (nothing else may come first); its code."""
    message = await asyncio.wait_for(ws.receive(), within)
    assert message.type == WSMsgType.CLOSE, message
    return ws.close_code


ROUTES = (
    "{name: socket, path: /socket, upstream: sockets, auth: jwt, websocket: true,"
    " strip_prefix: true}",
    "{name: open-socket, path: /open, upstream: sockets, auth: none, websocket: true,"
    " strip_prefix: true}",
    "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
)


@asynccontextmanager
async def gateway(
    tmp_path: Path, upstream: SocketUpstream, **auth: Any
) -> AsyncIterator[RunningGateway]:
    settings = quiet_settings(
        auth=auth_settings(tmp_path, service_keyring=Keyring.parse(SERVICE_SECRET), **auth),
    )
    table = routes({"sockets": [upstream.url]}, *ROUTES, extra=f'origins: ["{ORIGIN}"]\n')
    async with running_gateway(table, tmp_path, settings) as gw:
        yield gw


async def a_token(gw: RunningGateway) -> str:
    core = gw.core
    if await core.store.users.by_email("ada@example.com") is None:
        await core.accounts.create("ada@example.com", PASSWORD, verified=True)
    return (await core.sessions.login("ada@example.com", PASSWORD, CALL)).access_token


@asynccontextmanager
async def signed_in_socket(
    gw: RunningGateway, **options: Any
) -> AsyncIterator[ClientWebSocketResponse]:
    """A websocket to `/socket/ws` (auth: jwt) with a new access token of Ada's, on a client
    of its own (`options` for ws_connect)."""
    token = await a_token(gw)
    async with (
        ClientSession() as client,
        client.ws_connect(
            ws_url(gw, "/socket/ws"), headers={"Authorization": f"Bearer {token}"}, **options
        ) as ws,
    ):
        yield ws


async def a_service_token(gw: RunningGateway) -> str:
    """A new service token (`gws_...`), made through the gateway's auth core."""
    core = gw.core
    _, secret = await core.service_tokens.create("sockets", actor_id=None, call=CALL)
    return secret


def ws_url(gw: RunningGateway, path: str) -> str:
    return f"ws://{LOOPBACK}:{gw.port}{path}"


async def test_echo_of_text_binary_and_large_messages(tmp_path: Path) -> None:
    async with socket_upstream() as upstream, gateway(tmp_path, upstream) as gw:
        async with signed_in_socket(gw, max_msg_size=0) as ws:
            await ws.send_str("hello")
            assert (await ws.receive()).data == "hello"
            await ws.send_bytes(b"\x00\x01\xff")
            assert (await ws.receive()).data == b"\x00\x01\xff"
            large = bytes(range(256)) * 3600  # 900 KiB: under the 1 MiB default limit
            await ws.send_bytes(large)
            assert (await ws.receive()).data == large
            await ws.send_str("close-4000")
            assert await close_code(ws) == 4000
        handshake = upstream.handshakes[0]
        headers = {name.lower(): value for name, value in handshake["headers"].items()}
        assert handshake["path"] == "/ws"
        assert headers["x-auth-method"] == "jwt"
        assert "sec-websocket-extensions" not in headers  # nothing negotiated past the relay
        # What `gateway context-key sockets` prints for GATEWAY_SERVICE_SECRET s1:www...
        keys = {"s1": derive_key(b"w" * 48, "sockets")}
        assert headers["x-gateway-signature"].startswith("v2,kid=s1,aud=sockets,sig=")
        context = verify(keys, "sockets", "GET", "/ws", headers)
        assert context.user_id is not None
        assert (context.email, context.email_verified) == ("ada@example.com", True)
        with pytest.raises(ContextError):  # the master secret is not a key of any upstream
            verify({"s1": b"w" * 48}, "sockets", "GET", "/ws", headers)


async def test_the_token_may_come_in_the_subprotocol_list_or_the_query(tmp_path: Path) -> None:
    async with socket_upstream() as upstream, gateway(tmp_path, upstream) as gw:
        token = await a_token(gw)
        async with ClientSession() as client:
            async with client.ws_connect(
                ws_url(gw, "/socket/ws"), protocols=("bearer", token, "chat")
            ) as ws:
                assert ws.protocol == "chat"  # the upstream's choice among those offered
                await ws.send_str("x")
                assert (await ws.receive()).data == "x"
            async with client.ws_connect(
                ws_url(gw, "/socket/ws"), protocols=("bearer", token)
            ) as ws:
                assert ws.protocol == "bearer"
            async with client.ws_connect(
                ws_url(gw, f"/socket/ws?room=1&access_token={token}")
            ) as ws:
                await ws.send_str("y")
                assert (await ws.receive()).data == "y"
        first, second, third = upstream.handshakes
        assert token not in json.dumps(first) + json.dumps(second) + json.dumps(third)
        assert first["headers"]["Sec-WebSocket-Protocol"] == "chat"
        assert "Sec-WebSocket-Protocol" not in second["headers"]
        assert third["path"] == "/ws?room=1"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-token"),
        pytest.param({"Authorization": "Bearer not-a-jwt"}, 401, id="bad-token"),
        pytest.param("good-token-foreign-origin", 403, id="foreign-origin"),
    ],
)
async def test_refusals_come_before_any_upgrade(
    tmp_path: Path, headers: dict[str, str] | str, status: int
) -> None:
    async with socket_upstream() as upstream, gateway(tmp_path, upstream) as gw:
        if isinstance(headers, str):
            token = await a_token(gw)
            headers = {"Authorization": f"Bearer {token}", "Origin": "https://evil.example"}
        async with ClientSession() as client:
            with pytest.raises(WSServerHandshakeError) as refused:
                await client.ws_connect(ws_url(gw, "/socket/ws"), headers=headers)
            assert refused.value.status == status
        assert upstream.handshakes == []


async def test_an_upstream_that_refuses_the_upgrade_is_answered_as_it_said(
    tmp_path: Path,
) -> None:
    async with socket_upstream() as upstream, gateway(tmp_path, upstream) as gw:
        reader, writer = await asyncio.open_connection(LOOPBACK, gw.port)
        writer.write(
            b"GET /open/refuse HTTP/1.1\r\nHost: g\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        answer = await asyncio.wait_for(reader.read(), 10)  # read to EOF: the connection closes
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 403")
        assert json.loads(body) == {"error": "not_here"}


async def test_the_context_is_stored_while_open_and_removed_after(tmp_path: Path) -> None:
    async with socket_upstream() as upstream, gateway(tmp_path, upstream) as gw:
        token = await a_token(gw)
        service = {"Authorization": f"Service {await a_service_token(gw)}"}
        async with ClientSession() as client:
            async with client.ws_connect(
                ws_url(gw, "/socket/ws"), headers={"Authorization": f"Bearer {token}"}
            ) as ws:
                connection_id = ws._response.headers["X-Connection-Id"]
                await ws.send_str("x")
                await ws.receive()
                async with client.get(
                    f"{gw.url}/api/v1/auth/internal/sockets/{connection_id}", headers=service
                ) as response:
                    assert response.status == 200
                    context = (await response.json())["context"]
                assert context["connection_id"] == connection_id
                assert context["auth_method"] == "jwt"
                assert context["user_id"] is not None
                assert context["session_id"] is not None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while True:
                async with client.get(
                    f"{gw.url}/api/v1/auth/internal/sockets/{connection_id}", headers=service
                ) as response:
                    if response.status == 404:
                        break
                assert loop.time() < deadline
                await asyncio.sleep(0.02)


async def test_a_socket_closes_when_its_session_is_revoked(tmp_path: Path) -> None:
    async with socket_upstream() as upstream, gateway(tmp_path, upstream) as gw:
        token = await a_token(gw)
        bearer = {"Authorization": f"Bearer {token}"}
        async with (
            ClientSession() as client,
            client.ws_connect(ws_url(gw, "/socket/ws"), headers=bearer) as ws,
        ):
            await ws.send_str("x")
            await ws.receive()
            async with client.post(f"{gw.url}/api/v1/auth/logout", headers=bearer) as response:
                assert response.status == 204
            assert await close_code(ws) == 1008
        await eventually(lambda: bool(upstream.closes), "the upstream to see the close")
        assert upstream.closes == [1001]


async def test_a_socket_closes_when_its_token_expires(tmp_path: Path) -> None:
    async with (
        socket_upstream() as upstream,
        gateway(tmp_path, upstream, access_ttl=2.0) as gw,
        signed_in_socket(gw) as ws,
    ):
        assert await close_code(ws, within=15) == 1008


async def test_a_message_over_the_limit_closes_with_1009(tmp_path: Path) -> None:
    async with (
        socket_upstream() as upstream,
        gateway(tmp_path, upstream) as gw,
        signed_in_socket(gw) as ws,
    ):
        await ws.send_bytes(b"x" * (1024 * 1024 + 1))
        assert await close_code(ws) == 1009


async def test_a_slow_reader_slows_the_writer_instead_of_filling_memory(tmp_path: Path) -> None:
    async with socket_upstream() as upstream, gateway(tmp_path, upstream) as gw:
        upstream.hold.clear()  # the upstream stops reading
        async with signed_in_socket(gw) as ws:
            tunnels = gw.worker.gateway.sockets.tunnels  # type: ignore[union-attr]
            chunk = b"z" * (512 * 1024)

            async def push() -> int:
                sent = 0
                for _ in range(400):  # 200 MiB if nothing held it back
                    await ws.send_bytes(chunk)
                    sent += len(chunk)
                return sent

            sender = asyncio.create_task(push())
            await asyncio.sleep(1.0)
            (tunnel,) = tunnels.values()
            assert tunnel.upstream.transport is not None
            buffered = tunnel.upstream.transport.get_write_buffer_size()
            assert not sender.done()  # held back: the gateway stopped reading the client
            assert buffered < 4 * 1024 * 1024
            sender.cancel()
            upstream.hold.set()


async def test_sockets_per_address_are_limited(tmp_path: Path) -> None:
    async with socket_upstream() as upstream:
        settings = quiet_settings(
            ws_max_per_address=2,
            auth=auth_settings(tmp_path),
        )
        table = routes({"sockets": [upstream.url]}, *ROUTES)
        async with running_gateway(table, tmp_path, settings) as gw, ClientSession() as client:
            first = await client.ws_connect(ws_url(gw, "/open/ws"))
            second = await client.ws_connect(ws_url(gw, "/open/ws"))
            with pytest.raises(WSServerHandshakeError) as refused:
                await client.ws_connect(ws_url(gw, "/open/ws"))
            assert refused.value.status == 429
            await first.close()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while True:  # the closed one's place is free once the gateway saw it go
                try:
                    third = await client.ws_connect(ws_url(gw, "/open/ws"))
                    break
                except WSServerHandshakeError:
                    assert loop.time() < deadline
                    await asyncio.sleep(0.02)
            await second.close()
            await third.close()


async def test_sigterm_closes_sockets_with_1001_after_the_drain_period(tmp_path: Path) -> None:
    async with socket_upstream() as upstream:
        table = routes({"sockets": [upstream.url]}, *ROUTES)
        process = start_gateway_process(table, tmp_path, env={"GATEWAY_DRAIN_TIMEOUT": "1s"})
        try:
            async with (
                ClientSession() as client,
                client.ws_connect(f"ws://{LOOPBACK}:{process.port}/open/ws") as ws,
            ):
                await ws.send_str("x")
                assert (await ws.receive()).data == "x"
                process.signal(signal.SIGTERM)
                assert await close_code(ws, within=15) == 1001
            assert await asyncio.to_thread(process.process.wait, 15) == 0
        finally:
            process.stop()


KEY_ROUTES = (
    "{name: partner-socket, path: /partner, upstream: sockets, auth: api_key, websocket: true,"
    " strip_prefix: true}",
    "{name: any-socket, path: /any, upstream: sockets, auth: any, websocket: true,"
    " strip_prefix: true}",
    "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
)


async def test_key_and_pat_sockets_close_when_the_credential_is_revoked(tmp_path: Path) -> None:
    async with socket_upstream() as upstream:
        settings = quiet_settings(
            auth=auth_settings(tmp_path, service_keyring=Keyring.parse(SERVICE_SECRET)),
        )
        table = routes({"sockets": [upstream.url]}, *KEY_ROUTES)
        async with running_gateway(table, tmp_path, settings) as gw, ClientSession() as client:
            core = gw.core
            tenant = await core.tenants.create("Acme", [], ["127.0.0.0/8"], None, CALL)
            key_record, key = await core.keys.create(tenant.id, actor_id=None, call=CALL)
            user = await core.accounts.create("ada@example.com", PASSWORD, verified=True)
            pat_record, pat = await core.pats.create(user.id, {"name": "cli"}, CALL)
            by_key = await client.ws_connect(ws_url(gw, "/partner/ws"), headers={"X-API-Key": key})
            by_pat = await client.ws_connect(ws_url(gw, f"/any/ws?access_token={pat}"))
            for ws in (by_key, by_pat):
                await ws.send_str("x")
                assert (await ws.receive()).data == "x"
            assert upstream.handshakes[0]["headers"]["X-Auth-Method"] == "api_key"
            assert upstream.handshakes[1]["headers"]["X-Auth-Method"] == "pat"
            assert pat not in upstream.handshakes[1]["path"]

            await core.keys.revoke(key_record.id, tenant_id=None, actor_id=None, call=CALL)
            assert await close_code(by_key) == 1008
            await by_pat.send_str("still here")
            assert (await by_pat.receive()).data == "still here"

            await core.pats.delete(user.id, pat_record.id, CALL)
            assert await close_code(by_pat) == 1008


async def test_a_service_socket_closes_when_its_token_is_revoked(tmp_path: Path) -> None:
    async with socket_upstream() as upstream:
        settings = quiet_settings(auth=auth_settings(tmp_path))
        route = (
            "{name: internal-socket, path: /internal, upstream: sockets, auth: service,"
            " websocket: true, strip_prefix: true}"
        )
        table = routes({"sockets": [upstream.url]}, route)
        async with running_gateway(table, tmp_path, settings) as gw, ClientSession() as client:
            core = gw.core
            record, secret = await core.service_tokens.create("feed", actor_id=None, call=CALL)
            _, kept = await core.service_tokens.create("other", actor_id=None, call=CALL)
            revoked = await client.ws_connect(
                ws_url(gw, "/internal/ws"), headers={"Authorization": f"Service {secret}"}
            )
            staying = await client.ws_connect(
                ws_url(gw, "/internal/ws"), headers={"Authorization": f"Service {kept}"}
            )
            for ws in (revoked, staying):
                await ws.send_str("x")
                assert (await ws.receive()).data == "x"
            assert upstream.handshakes[0]["headers"]["X-Auth-Method"] == "service"
            assert upstream.handshakes[0]["headers"]["X-Credential-Id"] == record.id

            await core.service_tokens.revoke(record.id, actor_id=None, call=CALL)
            assert await close_code(revoked) == 1008
            await staying.send_str("still here")
            assert (await staying.receive()).data == "still here"
            await staying.close()


async def test_pings_pass_and_silence_closes_after_the_idle_timeout(tmp_path: Path) -> None:
    async with socket_upstream() as upstream:
        settings = quiet_settings(ws_idle_timeout=1.0, auth=auth_settings(tmp_path))
        table = routes({"sockets": [upstream.url]}, *ROUTES)
        async with (
            running_gateway(table, tmp_path, settings) as gw,
            ClientSession() as client,
            client.ws_connect(ws_url(gw, "/open/ws"), autoping=False) as ws,
        ):
            await ws.ping(b"are you there")
            message = await asyncio.wait_for(ws.receive(), 10)
            assert message.type == WSMsgType.PONG
            assert message.data == b"are you there"
            assert await close_code(ws) == 1001  # then nothing, for a second


async def test_a_logout_through_another_gateway_closes_the_socket(
    tmp_path: Path, postgres_url: str, redis_prefix: str
) -> None:
    async with socket_upstream() as upstream:
        settings = quiet_settings(
            auth=auth_settings(
                tmp_path,
                database_url=postgres_url,
                redis_url=REDIS_URL,
                redis_prefix=redis_prefix,
                service_keyring=Keyring.parse(SERVICE_SECRET),
            ),
        )
        table = routes({"sockets": [upstream.url]}, *ROUTES)
        async with (
            two_gateways(table, tmp_path, settings) as (first, second),
            ClientSession() as client,
        ):
            token = await a_token(first)
            bearer = {"Authorization": f"Bearer {token}"}
            async with client.ws_connect(ws_url(second, "/socket/ws"), headers=bearer) as ws:
                connection_id = ws._response.headers["X-Connection-Id"]
                # The context is in Redis, readable from the other gateway too, once the
                # gateway holding the socket has written it (off the handshake's path).
                holder = second.worker.gateway
                assert holder is not None
                stored = holder.sockets._stored.get(connection_id)
                if stored is not None:
                    await stored
                service = {"Authorization": f"Service {await a_service_token(first)}"}
                async with client.get(
                    f"{first.url}/api/v1/auth/internal/sockets/{connection_id}", headers=service
                ) as response:
                    assert response.status == 200
                    assert (await response.json())["context"]["auth_method"] == "jwt"
                async with client.post(f"{first.url}/api/v1/auth/logout", headers=bearer) as done:
                    assert done.status == 204
                assert await close_code(ws) == 1008
            async with client.get(f"{first.url}/metrics") as response:
                first_metrics = await response.text()
            async with client.get(f"{second.url}/metrics") as response:
                second_metrics = await response.text()
        assert (
            "gateway_websocket_connections_total 1.0" not in first_metrics
        )  # the socket was not its
        assert "gateway_websocket_connections_total 1.0" in second_metrics
        assert "gateway_websocket_active_connections 0.0" in second_metrics
        assert "gateway_websocket_context_hits_total 1.0" in first_metrics


async def test_socket_auth_failures_are_counted(tmp_path: Path) -> None:
    async with (
        socket_upstream() as upstream,
        gateway(tmp_path, upstream) as gw,
        ClientSession() as client,
    ):
        with pytest.raises(WSServerHandshakeError):
            await client.ws_connect(ws_url(gw, "/socket/ws"))
        async with client.get(f"{gw.url}/metrics") as response:
            assert "gateway_websocket_auth_failures_total 1.0" in await response.text()


async def test_a_client_gone_during_the_handshake_frees_the_upstream_connection(
    tmp_path: Path,
) -> None:
    closed = asyncio.Event()
    accepted = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # never answers; returns when the gateway closes its side
        closed.set()
        writer.close()

    async with tcp_server(silent) as port:
        table = routes({"sockets": [f"http://{LOOPBACK}:{port}"]}, *ROUTES)
        async with running_gateway(table, tmp_path) as gw:
            _reader, writer = await asyncio.open_connection(LOOPBACK, gw.port)
            writer.write(
                b"GET /open/ws HTTP/1.1\r\nHost: g\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            await asyncio.wait_for(accepted.wait(), 10)
            writer.close()  # gone before the upstream answered
            await asyncio.wait_for(closed.wait(), 10)


async def test_connection_ids_are_unguessable(tmp_path: Path) -> None:
    """A connection id names a socket's context to services: knowing one's own must not tell
    another's. 128 random bits each, no shared prefix, no counter."""
    async with socket_upstream() as upstream, gateway(tmp_path, upstream) as gw:
        ids = []
        async with ClientSession() as client:
            for _ in range(8):
                async with client.ws_connect(ws_url(gw, "/open/ws")) as ws:
                    ids.append(ws._response.headers["X-Connection-Id"])
    assert all(re.fullmatch(r"ws_[0-9a-f]{32}", value) for value in ids), ids
    assert len({value[:15] for value in ids}) == 8  # "ws_" + 12 hex: nothing in common
    numbers = [int(value[3:], 16) for value in ids]
    assert len({b - a for a, b in itertools.pairwise(numbers)}) == 7  # no fixed step
