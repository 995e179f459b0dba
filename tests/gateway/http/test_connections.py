"""Client connections (docs/limits.md): a silent new connection ends after the
header timeout, kept-alive ones after the keep-alive timeout, and one address may hold at most
GATEWAY_MAX_CONNECTIONS_PER_ADDRESS connections, given back on every way a connection ends.

Everything goes through raw sockets, as a client (or a flood) would; waits are for events (a
close seen by the client), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import netaddr
import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, web

from gateway.config import Settings
from tests.gateway.http.test_protocol import read_response
from tests.support import (
    LOOPBACK,
    RunningGateway,
    Upstream,
    quiet_settings,
    routes,
    running_gateway,
    serving,
)

WAIT = 20.0  # generous for a loaded machine, and shorter than the 30 s keep-alive used here

ROUTES = (
    "{name: echo, path: /echo, upstream: echo, auth: none}",
    "{name: small, path: /small, upstream: echo, auth: none, max_body: 1k}",
    "{name: socket, path: /socket, upstream: sockets, auth: none, websocket: true,"
    " strip_prefix: true}",
)

# One second to begin a request; half a minute of keep-alive, which no test here waits out.
TIMEOUTS = quiet_settings(
    header_timeout=1.0,
    keepalive_timeout=30.0,
)


async def websocket_echo(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str(message.data)
    return ws


@asynccontextmanager
async def gateway_with(
    tmp_path: Path, upstream: Upstream, settings: Settings
) -> AsyncIterator[RunningGateway]:
    """The gateway with `/echo`, `/small` (1k bodies) and a websocket route `/socket`."""
    app = web.Application()
    app.router.add_get("/ws", websocket_echo)
    async with serving(app) as port:
        table = routes({"echo": [upstream.url], "sockets": [f"http://{LOOPBACK}:{port}"]}, *ROUTES)
        async with running_gateway(table, tmp_path, settings) as gw:
            yield gw


@dataclass
class Raw:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def get(self, path: bytes = b"/echo", *lines: bytes) -> int:
        """One request on this connection; its status."""
        extra = b"".join(line + b"\r\n" for line in lines)
        self.writer.write(b"GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (path, extra))
        return (await asyncio.wait_for(read_response(self.reader), WAIT)).status

    async def closed_by_server(self) -> bytes:
        """Wait for the gateway to end the connection; what it sent before."""
        received = b""
        with contextlib.suppress(ConnectionResetError):
            async with asyncio.timeout(WAIT):
                while chunk := await self.reader.read(65536):
                    received += chunk
        return received

    def close(self) -> None:
        self.writer.close()

    def reset(self) -> None:
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


async def connect(port: int) -> Raw:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    return Raw(reader, writer)


async def refused(port: int) -> bool:
    """A new connection is closed by the gateway without a byte of answer to its request."""
    raw = await connect(port)
    try:
        raw.writer.write(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            await raw.writer.drain()
        return await raw.closed_by_server() == b""
    finally:
        raw.close()


async def admitted(port: int) -> Raw:
    """A new connection that is served, once one is (a slot may take a moment to be given
    back after the client saw its connection end)."""
    async with asyncio.timeout(WAIT):
        while True:
            raw = await connect(port)
            try:
                if await raw.get() == 200:
                    return raw
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            raw.close()
            await asyncio.sleep(0.05)


# -- the header timeout for a new connection ----------------------------------------------------


@pytest.mark.parametrize(
    "sent", [pytest.param(b"", id="nothing"), pytest.param(b"\r\n\r\n", id="blank-lines")]
)
async def test_a_connection_that_sends_no_request_is_closed_after_the_header_timeout(
    tmp_path: Path, upstream: Upstream, sent: bytes
) -> None:
    async with gateway_with(tmp_path, upstream, TIMEOUTS) as gw:
        silent = await connect(gw.port)
        silent.writer.write(sent)
        try:
            # Closed well before the 30 s keep-alive timeout would have: WAIT is shorter.
            assert await silent.closed_by_server() == b""
        finally:
            silent.close()


async def test_between_requests_the_keep_alive_timeout_applies(
    tmp_path: Path, upstream: Upstream
) -> None:
    async with gateway_with(tmp_path, upstream, TIMEOUTS) as gw:
        kept = await connect(gw.port)
        assert await kept.get() == 200
        # Opened after `kept` was answered, `silent` has been idle no longer than `kept`: the
        # header timeout closing it would have closed `kept` too, were that the limit for both.
        silent = await connect(gw.port)
        try:
            assert await silent.closed_by_server() == b""
            assert await kept.get() == 200
        finally:
            kept.close()
            silent.close()


async def test_a_quiet_websocket_outlives_the_header_and_keep_alive_timeouts(
    tmp_path: Path, upstream: Upstream
) -> None:
    impatient = dataclasses.replace(TIMEOUTS, keepalive_timeout=1.0)
    async with (
        gateway_with(tmp_path, upstream, impatient) as gw,
        ClientSession() as session,
        session.ws_connect(f"{gw.url}/socket/ws") as ws,
    ):
        # A silent connection opened after the websocket went quiet is closed by the header
        # timeout; the websocket is past both timeouts by then, and still relays.
        silent = await connect(gw.port)
        try:
            assert await silent.closed_by_server() == b""
        finally:
            silent.close()
        await ws.send_str("still here")
        message = await asyncio.wait_for(ws.receive(), WAIT)
        assert (message.type, message.data) == (WSMsgType.TEXT, "still here")


# -- GATEWAY_MAX_CONNECTIONS_PER_ADDRESS --------------------------------------------------------

LIMITED = dataclasses.replace(TIMEOUTS, max_connections_per_address=2)


async def over_limit_count(connection: Raw) -> float:
    """gateway_connections_over_limit_total, asked on a connection already admitted."""
    connection.writer.write(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    response = await asyncio.wait_for(read_response(connection.reader), WAIT)
    assert response.status == 200
    for line in response.body.decode().splitlines():
        if line.startswith("gateway_connections_over_limit_total "):
            return float(line.split()[1])
    raise AssertionError("gateway_connections_over_limit_total is not in /metrics")


async def test_one_connection_over_the_limit_is_closed_at_once_and_counted(
    tmp_path: Path, upstream: Upstream
) -> None:
    async with gateway_with(tmp_path, upstream, LIMITED) as gw:
        first, second = await connect(gw.port), await connect(gw.port)
        try:
            assert await first.get() == 200
            assert await second.get() == 200
            assert await refused(gw.port)
            assert await refused(gw.port)
            # The admitted ones are not disturbed.
            assert await first.get() == 200
            assert await over_limit_count(second) == 2
        finally:
            first.close()
            second.close()


@dataclass
class Occupant:
    """A connection holding a slot, and how it ends."""

    raw: Raw | None = None
    ws: ClientWebSocketResponse | None = None
    session: ClientSession | None = None


Opener = Callable[[int, str], Awaitable[Occupant]]
Ender = Callable[[Occupant], Awaitable[None]]


async def open_raw(port: int, url: str) -> Occupant:
    return Occupant(raw=await connect(port))


async def open_served(port: int, url: str) -> Occupant:
    raw = await connect(port)
    assert await raw.get() == 200
    return Occupant(raw=raw)


async def open_websocket(port: int, url: str) -> Occupant:
    session = ClientSession()
    ws = await session.ws_connect(f"{url}/socket/ws")
    await ws.send_str("hello")
    assert (await asyncio.wait_for(ws.receive(), WAIT)).data == "hello"
    return Occupant(ws=ws, session=session)


async def client_closes(occupant: Occupant) -> None:
    assert occupant.raw is not None
    occupant.raw.close()


async def client_resets(occupant: Occupant) -> None:
    assert occupant.raw is not None
    occupant.raw.reset()


async def answered_with_close(occupant: Occupant) -> None:
    assert occupant.raw is not None
    assert await occupant.raw.get(b"/echo", b"Connection: close") == 200
    assert await occupant.raw.closed_by_server() == b""


async def malformed_request(occupant: Occupant) -> None:
    assert occupant.raw is not None
    occupant.raw.writer.write(b"GET /echo HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")
    assert (await occupant.raw.closed_by_server()).startswith(b"HTTP/1.1 400 ")


async def header_timeout(occupant: Occupant) -> None:
    assert occupant.raw is not None
    assert await occupant.raw.closed_by_server() == b""


async def body_refused_midway(occupant: Occupant) -> None:
    # 413 before the body is read, then the lingering close; the client leaves.
    assert occupant.raw is not None
    writer = occupant.raw.writer
    writer.write(b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
    writer.write(b"x" * 100_000)
    answer = await occupant.raw.closed_by_server()
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    occupant.raw.close()


async def websocket_closes(occupant: Occupant) -> None:
    assert occupant.ws is not None
    assert occupant.session is not None
    await occupant.ws.close()
    await occupant.session.close()


CLOSE_PATHS = [
    pytest.param(open_served, client_closes, id="client-closes"),
    pytest.param(open_served, client_resets, id="client-resets"),
    pytest.param(open_served, answered_with_close, id="connection-close-answered"),
    pytest.param(open_served, malformed_request, id="malformed-request-refused"),
    pytest.param(open_raw, header_timeout, id="header-timeout"),
    pytest.param(open_served, body_refused_midway, id="413-and-lingering-close"),
    pytest.param(open_websocket, websocket_closes, id="websocket-tunnel-ends"),
]


# Three seconds to begin a request: the silent occupants must outlast the check that they fill
# the limit, even on a loaded machine.
PATIENT_LIMITED = dataclasses.replace(LIMITED, header_timeout=3.0)


@pytest.mark.parametrize(("opener", "ender"), CLOSE_PATHS)
async def test_every_way_a_connection_ends_gives_its_slot_back(
    tmp_path: Path, upstream: Upstream, opener: Opener, ender: Ender
) -> None:
    async with gateway_with(tmp_path, upstream, PATIENT_LIMITED) as gw:
        occupants = [await opener(gw.port, gw.url), await opener(gw.port, gw.url)]
        fresh: list[Raw] = []
        try:
            assert await refused(gw.port)  # the two hold both slots
            for occupant in occupants:
                await ender(occupant)
            fresh = [await admitted(gw.port), await admitted(gw.port)]
            # Exactly two were given back: the limit holds as before.
            assert await refused(gw.port)
        finally:
            for occupant in occupants:
                if occupant.raw is not None:
                    occupant.raw.close()
                if occupant.session is not None:
                    await occupant.session.close()
            for raw in fresh:
                raw.close()


async def test_trusted_proxies_are_not_limited(tmp_path: Path, upstream: Upstream) -> None:
    behind_a_proxy = dataclasses.replace(
        LIMITED, max_connections_per_address=1, trusted_proxies=netaddr.IPSet([LOOPBACK])
    )
    async with gateway_with(tmp_path, upstream, behind_a_proxy) as gw:
        connections = [await connect(gw.port) for _ in range(3)]
        try:
            assert [await raw.get() for raw in connections] == [200, 200, 200]
        finally:
            for raw in connections:
                raw.close()


async def test_zero_means_no_limit(tmp_path: Path, upstream: Upstream) -> None:
    unlimited = dataclasses.replace(LIMITED, max_connections_per_address=0)
    async with gateway_with(tmp_path, upstream, unlimited) as gw:
        connections = [await connect(gw.port) for _ in range(5)]
        try:
            assert [await raw.get() for raw in connections] == [200] * 5
        finally:
            for raw in connections:
                raw.close()


@pytest.mark.parametrize("value", ["-1", "many", "1.5", "2k"])
def test_a_bad_limit_stops_start_up_naming_the_variable(tmp_path: Path, value: str) -> None:
    config = tmp_path / "routes.yaml"
    route = "{name: e, path: /e, upstream: echo, auth: none}"
    config.write_text(routes({"echo": [f"http://{LOOPBACK}:9"]}, route))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={"GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": value, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("gateway: GATEWAY_MAX_CONNECTIONS_PER_ADDRESS: ")


# -- the lingering close -----------------------------------------------------------------------


async def test_a_lingering_connection_does_not_hold_up_shutdown(
    tmp_path: Path, upstream: Upstream
) -> None:
    async with gateway_with(tmp_path, upstream, TIMEOUTS) as gw:
        client = await connect(gw.port)
        client.writer.write(b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
        head = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 413 ")

        async def keep_sending() -> None:
            # The rest of the body, slowly: the gateway reads and drops it, lingering.
            with contextlib.suppress(ConnectionError):
                while True:
                    client.writer.write(b"x" * 1000)
                    await client.writer.drain()
                    await asyncio.sleep(0.2)

        sender = asyncio.create_task(keep_sending())
        try:
            # Shutting down ends the linger at once instead of waiting for the client (30 s)
            # or the drain timeout (30 s): both are longer than WAIT.
            await asyncio.wait_for(gw.worker.stop(), WAIT)
            await client.closed_by_server()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            client.close()


async def test_a_lingering_connection_whose_client_goes_quiet_is_let_go(
    tmp_path: Path, upstream: Upstream
) -> None:
    one = dataclasses.replace(LIMITED, max_connections_per_address=1)
    async with gateway_with(tmp_path, upstream, one) as gw:
        client = await connect(gw.port)
        try:
            client.writer.write(
                b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n"
            )
            answer = await client.closed_by_server()  # the answer, then the gateway's end
            assert answer.startswith(b"HTTP/1.1 413 ")
            # The client neither sends nor closes: the gateway lingers, holding the address's
            # one slot, until 5 s pass without a byte (not the 30 s of the whole linger).
            assert await refused(gw.port)
            (await admitted(gw.port)).close()
        finally:
            client.close()
