"""Header names with `_` (docs/forwarding.md: header names with `_`): WSGI and CGI stacks read
`X_User_Id` as `X-User-Id` and `Transfer_Encoding` as `Transfer-Encoding`, so such a name is
dropped by default, kept with `underscores_in_headers: true`, and never forwarded, whatever the
setting, when it spells a header the gateway decides (identity, framing, hop-by-hop,
forwarding, credentials, the websocket handshake). Both directions, read off the wire."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.gateway.proxy.conftest import (
    OK,
    RawUpstream,
    Received,
    Reply,
    Script,
    raw_client,
    raw_upstream,
    request_bytes,
    send_raw,
)
from tests.support import RunningGateway, cases, routes, running_gateway

ROUTES = (
    "{name: plain, path: /plain, upstream: up, auth: none}",
    "{name: wsgi, path: /wsgi, upstream: up, auth: none, underscores_in_headers: true}",
    "{name: socket, path: /socket, upstream: up, auth: none, websocket: true}",
    "{name: wsgi-socket, path: /wsgi-socket, upstream: up, auth: none, websocket: true,"
    " underscores_in_headers: true}",
)
MARK = b"sneaky"  # the value of every header under test: found in what the upstream read or not


@asynccontextmanager
async def stack(
    tmp_path: Path, script: Script
) -> AsyncIterator[tuple[RunningGateway, RawUpstream]]:
    async with (
        raw_upstream(script) as upstream,
        running_gateway(routes({"up": [upstream.url]}, *ROUTES), tmp_path) as gw,
    ):
        yield gw, upstream


def names(request: Received) -> list[bytes]:
    """The header names the upstream received, as spelt."""
    lines = request.head.split(b"\r\n")[1:]
    return [line.partition(b":")[0] for line in lines if line]


# Spellings of headers the gateway decides: dropped on every route, with the flag or without.
DISGUISED = [
    b"X_User_Id",
    b"x-user_id",
    b"X_USER_ROLES",
    b"X_Tenant_Id",
    b"X_Auth_Method",
    b"X_Session_Id",
    b"X_Gateway_Signature",
    b"X_Credential_Id",
    b"Transfer_Encoding",
    b"TRANSFER_encoding",
    b"Content_Length",
    b"Keep_Alive",
    b"Proxy_Authorization",
    b"Proxy_Connection",
    b"X_Forwarded_For",
    b"X_Forwarded_Host",
    b"x_forwarded-proto",
    b"X_Real_IP",
    b"X_Request_Id",
    b"X_API_Key",
    b"Sec_WebSocket_Protocol",
]


@pytest.mark.parametrize("route", ["/plain", "/wsgi"])
@pytest.mark.parametrize("name", DISGUISED, ids=[n.decode() for n in DISGUISED])
async def test_a_disguised_header_never_reaches_the_upstream(
    tmp_path: Path, route: str, name: bytes
) -> None:
    async with stack(tmp_path, lambda _: Reply(OK)) as (gw, upstream):
        data = request_bytes("GET", route.encode() + b"/a", name + b": " + MARK, b"X-Kept: yes")
        response = await send_raw(gw.port, data)
        assert response.status == 200
    (request,) = upstream.received
    assert MARK not in request.head
    assert b"X-Kept" in names(request)


CUSTOM = [b"X_Custom_Thing", b"My_Header", b"x_trace_id"]


@pytest.mark.parametrize("name", CUSTOM, ids=[n.decode() for n in CUSTOM])
async def test_a_name_with_an_underscore_is_dropped_unless_the_route_keeps_them(
    tmp_path: Path, name: bytes
) -> None:
    async with stack(tmp_path, lambda _: Reply(OK)) as (gw, upstream):
        for route in (b"/plain/a", b"/wsgi/a"):
            data = request_bytes("GET", route, name + b": " + MARK)
            assert (await send_raw(gw.port, data)).status == 200
    dropped, kept = upstream.received
    assert MARK not in dropped.head
    assert name in names(kept)
    assert name + b": " + MARK + b"\r\n" in kept.head


CONNECTION_LISTED = [
    ("a listed name spelt with _", [b"Connection: x-secret", b"X_Secret: sneaky"]),
    ("a listed _ spelling of a plain name", [b"Connection: x_secret", b"X-Secret: sneaky"]),
]


@pytest.mark.parametrize("lines", cases(CONNECTION_LISTED))
async def test_connection_options_compare_with_underscores_as_dashes(
    tmp_path: Path, lines: list[bytes]
) -> None:
    async with stack(tmp_path, lambda _: Reply(OK)) as (gw, upstream):
        assert (await send_raw(gw.port, request_bytes("GET", b"/wsgi/a", *lines))).status == 200
    (request,) = upstream.received
    assert MARK not in request.head


@pytest.mark.parametrize("route", [b"/plain/a", b"/wsgi/a"])
async def test_a_disguised_transfer_encoding_does_not_reframe_the_body(
    tmp_path: Path, route: bytes
) -> None:
    """A WSGI upstream that believed `Transfer_Encoding: chunked` would read the body as chunks
    and the rest as the next request: the upstream must get the body framed by the gateway
    alone."""
    body = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    async with stack(tmp_path, lambda _: Reply(OK)) as (gw, upstream):
        data = request_bytes(
            "POST",
            route,
            b"Content-Length: %d" % len(body),
            b"Transfer_Encoding: chunked",
            b"Content_Length: 0",
            body=body,
        )
        response = await send_raw(gw.port, data)
        assert response.status == 200
    (request,) = upstream.received
    spelt = [name.lower().replace(b"_", b"-") for name in names(request)]
    assert spelt.count(b"content-length") == 1
    assert b"transfer-encoding" not in spelt
    assert b"Content-Length: %d\r\n" % len(body) in request.head
    assert request.body == body


RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Transfer_Encoding: chunked\r\n"
    b"Content_Length: 99\r\n"
    b"Keep_Alive: timeout=1\r\n"
    b"Proxy_Connection: close\r\n"
    b"Connection: x_internal\r\n"
    b"X-Internal: sneaky\r\n"
    b"X_Public: yes\r\n"
    b"Content-Length: 2\r\n\r\nok"
)


async def test_a_disguised_framing_header_in_a_response_never_reaches_the_client(
    tmp_path: Path,
) -> None:
    async with (
        stack(tmp_path, lambda _: Reply(RESPONSE)) as (gw, _),
        raw_client(gw.port) as connection,
    ):
        for _ in range(2):  # and the client connection is kept, framed by the gateway
            response = await connection.exchange(request_bytes("GET", b"/plain/r"))
            assert response.status == 200
            assert response.body == b"ok"
            spelt = [name.lower() for name, _ in response.headers]
            assert "transfer_encoding" not in spelt
            assert "content_length" not in spelt
            assert "keep_alive" not in spelt
            assert "proxy_connection" not in spelt
            assert "x-internal" not in spelt  # named in Connection as x_internal
            assert spelt.count("content-length") == 1
            # Other names with `_` pass back to the client, as nginx passes them.
            assert response.header("X_Public") == "yes"


def websocket_answer(request: Received) -> Reply:
    """101 to a handshake that may upgrade; a refusal with disguised framing otherwise."""
    key = next(
        line.partition(b":")[2].strip()
        for line in request.head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    if b"/refuse" in request.target:
        return Reply(
            b"HTTP/1.1 403 Forbidden\r\nTransfer_Encoding: chunked\r\nContent_Length: 9\r\n"
            b"X_Public: yes\r\nContent-Length: 2\r\n\r\nno",
            then="close",
        )
    accept = base64.b64encode(
        hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()  # noqa: S324
    )
    return Reply(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def handshake(target: bytes, *lines: bytes) -> bytes:
    return request_bytes(
        "GET",
        target,
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Version: 13",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        *lines,
    )


@pytest.mark.parametrize("route", [b"/socket/ws", b"/wsgi-socket/ws"])
async def test_a_websocket_handshake_forwards_no_disguised_header(
    tmp_path: Path, route: bytes
) -> None:
    async with stack(tmp_path, websocket_answer) as (gw, upstream):
        data = handshake(
            route,
            b"X_User_Id: sneaky",
            b"Sec_WebSocket_Key: sneaky",
            b"Sec_WebSocket_Extensions: sneaky",
            b"Transfer_Encoding: sneaky",
        )
        response = await send_raw(gw.port, data)
        assert response.status == 101
    (request,) = upstream.received
    assert MARK not in request.head


async def test_a_refused_upgrade_passes_back_no_disguised_framing(tmp_path: Path) -> None:
    async with stack(tmp_path, websocket_answer) as (gw, _):
        response = await send_raw(gw.port, handshake(b"/socket/refuse"))
    assert response.status == 403
    assert response.body == b"no"
    spelt = [name.lower() for name, _ in response.headers]
    assert "transfer_encoding" not in spelt
    assert "content_length" not in spelt
    assert response.header("X_Public") == "yes"
