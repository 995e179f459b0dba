"""Websockets through a real gateway against real upstreams on loopback: an aiohttp websocket
echo (as in test_websockets.py) where a well-behaved peer is wanted, and raw asyncio servers and
clients where the test must choose every byte: frames split one byte at a time, frames in the
same packet as a handshake, garbage, half-sent frames, held answers. Every wait is bounded;
nothing is asserted about time."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, WSMsgType, WSServerHandshakeError, web

from auth_core.service import CallInfo
from gateway.config import Settings
from tests.gateway.test_websockets import socket_upstream
from tests.gateway.websocket_wire import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    Frame,
    decode_all,
    frame,
    frame_at,
)
from tests.support import (
    LOOPBACK,
    RunningGateway,
    auth_settings,
    eventually,
    free_port,
    quiet_settings,
    routes,
    running_gateway,
    tcp_server,
    upstream_server,
)

WAIT = 10.0  # the bound of every wait
CALL = CallInfo()
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

ROUTE = "{name: open-socket, path: /open, upstream: sockets, auth: none, websocket: true,"
ROUTE += " strip_prefix: true}"


def accept_for(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())  # noqa: S324 - RFC 6455


# -- frames (the tests' own encoder and decoder in websocket_wire.py, not the gateway's) -------


def encode(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True) -> bytes:
    """A frame as a client (masked, with a fresh key) or a server (unmasked) sends it."""
    return frame(opcode, payload, fin=fin, mask=os.urandom(4) if mask else None)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    """The next frame the peer sends (read header field by header field)."""
    async with asyncio.timeout(WAIT):
        data = await reader.readexactly(2)
        size = {126: 2, 127: 8}.get(data[1] & 0x7F, 0)
        data += await reader.readexactly(size + (4 if data[1] & 0x80 else 0))
        length = int.from_bytes(data[2 : 2 + size], "big") if size else data[1] & 0x7F
        data += await reader.readexactly(length)
    found = frame_at(data, 0)
    assert found is not None
    return found


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the peer closes; fails (TimeoutError) if it does not within WAIT."""
    async with asyncio.timeout(WAIT):
        return await reader.read()


async def trickle(writer: asyncio.StreamWriter, data: bytes) -> None:
    """One byte a write, letting the event loop turn between them, so that the gateway (in
    this loop) reads them one by one."""
    for index in range(len(data)):
        writer.write(data[index : index + 1])
        await writer.drain()
        await asyncio.sleep(0)
        await asyncio.sleep(0)


# -- a raw client ------------------------------------------------------------------------------


def handshake(path: str = "/open/ws", *, extra_headers: bytes = b"") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: gateway\r\n".encode()
        + b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        + b"Sec-WebSocket-Key: "
        + KEY
        + b"\r\n"
        + extra_headers
        + b"\r\n"
    )


@dataclass
class RawClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    status: int = 0
    head: bytes = b""

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


async def raw_client(
    gw: RunningGateway, first: bytes | None = None, *, answer: bool = True
) -> RawClient:
    """Connect and send `first` (by default a handshake to /open/ws) in one write; read the
    answer's head when `answer`."""
    reader, writer = await asyncio.open_connection(LOOPBACK, gw.port)
    client = RawClient(reader, writer)
    writer.write(handshake() if first is None else first)
    await writer.drain()
    if answer:
        await read_head(client)
    return client


async def read_head(client: RawClient) -> None:
    async with asyncio.timeout(WAIT):
        client.head = await client.reader.readuntil(b"\r\n\r\n")
    client.status = int(client.head.split(b" ", 2)[1])


def header_lines(head: bytes, name: bytes) -> list[bytes]:
    found = []
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            found.append(value.strip())
    return found


# -- a raw upstream ----------------------------------------------------------------------------


@dataclass
class RawUpstream:
    """An asyncio server that reads a handshake and hands the connection to `script`; it keeps
    what each connection received after the handshake, until EOF."""

    url: str = ""
    heads: list[bytes] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)  # one per finished connection
    finished: int = 0
    first_bytes: list[bytes] = field(default_factory=list)


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes, RawUpstream], Awaitable[Any]]


def answer_101(key: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_for(key) + b"\r\n" + extra + b"\r\n"
    )


def key_of(head: bytes) -> bytes:
    (key,) = header_lines(head, b"sec-websocket-key")
    return key


@asynccontextmanager
async def raw_upstream(script: Script) -> AsyncIterator[RawUpstream]:
    state = RawUpstream()
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            state.heads.append(head)
            await script(reader, writer, key_of(head), state)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()
            state.finished += 1
            tasks.discard(task)

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    state.url = f"http://{LOOPBACK}:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def keep_the_rest(
    reader: asyncio.StreamReader, state: RawUpstream, *, bound: float = WAIT
) -> None:
    """Read what comes after the handshake until EOF, and keep it."""
    data = b""
    try:
        async with asyncio.timeout(bound):
            while chunk := await reader.read(65536):
                data += chunk
    finally:
        state.received.append(data)


def answer_when(release: asyncio.Event) -> Script:
    """An upstream that holds each handshake until `release` is set, then answers 101 and
    keeps what follows."""

    async def held(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        async with asyncio.timeout(WAIT):
            await release.wait()
        writer.write(answer_101(key))
        await keep_the_rest(reader, state)

    return held


# -- the gateway -------------------------------------------------------------------------------


@asynccontextmanager
async def gateway_to(
    tmp_path: Path, upstream_url: str, **settings: Any
) -> AsyncIterator[RunningGateway]:
    table = routes({"sockets": [upstream_url]}, ROUTE)
    options: dict[str, Any] = {"access_log": "off", "watch_config": False}
    options.update(settings)
    async with running_gateway(
        table, tmp_path, Settings(auth=auth_settings(tmp_path), **options)
    ) as gw:
        yield gw


def registry(gw: RunningGateway) -> Any:
    return gw.worker.gateway.sockets  # type: ignore[union-attr]


def contexts(gw: RunningGateway) -> dict[str, Any]:
    return gw.core.sockets.local


async def all_released(gw: RunningGateway) -> None:
    """No socket held anywhere: registry, counters, stored context."""
    sockets = registry(gw)
    await eventually(
        lambda: not sockets.tunnels and not sockets.per_address and not contexts(gw),
        "the registry and the context store to be empty",
    )


async def metrics_of(gw: RunningGateway) -> str:
    async with ClientSession() as session, session.get(f"{gw.url}/metrics") as response:
        return await response.text()


def socket_metric(text: str, name: str) -> float:
    """The value of an unlabelled metric (0 when it was never set, so not rendered)."""
    for line in text.splitlines():
        metric, _, value = line.partition(" ")
        if not line.startswith("#") and metric == name:
            return float(value)
    return 0.0


def ws_url(gw: RunningGateway, path: str = "/open/ws") -> str:
    return f"ws://{LOOPBACK}:{gw.port}{path}"


# =============================================================================================
# Bytes in odd places: pipelined after the handshake, with the 101, one at a time
# =============================================================================================


async def test_frames_sent_with_the_handshake_reach_the_upstream(tmp_path: Path) -> None:
    async with socket_upstream() as upstream, gateway_to(tmp_path, upstream.url) as gw:
        first = handshake() + encode(TEXT, b"early") + encode(BINARY, b"\x00\x01")
        client = await raw_client(gw, first)
        assert client.status == 101
        assert (await read_frame(client.reader)).payload == b"early"
        assert (await read_frame(client.reader)).payload == b"\x00\x01"
        await client.send(encode(CLOSE, close_payload(1000)))
        reply = await read_frame(client.reader)
        assert (reply.opcode, reply.code) == (CLOSE, 1000)
        assert await read_to_eof(client.reader) == b""  # the gateway closes once both closed
        client.close()
        await all_released(gw)


async def test_more_than_64k_sent_before_the_upstream_answered_all_arrives(
    tmp_path: Path,
) -> None:
    """The client's frames that come while the upstream has not answered are held (reading is
    paused past 64 KiB) and relayed once the tunnel starts, in order, none lost."""
    release = asyncio.Event()

    async with (
        raw_upstream(answer_when(release)) as upstream,
        gateway_to(tmp_path, upstream.url) as gw,
    ):
        frames = [encode(BINARY, bytes([n]) * 30000) for n in range(12)]  # ~360 KB
        frames.append(encode(CLOSE, close_payload(1000)))
        client = await raw_client(gw, handshake() + b"".join(frames), answer=False)
        server = gw.worker.server
        assert server is not None
        await eventually(
            lambda: any(c._reading_paused for c in server.connections),
            "the gateway to stop reading the client while the upstream has not answered",
        )
        release.set()
        await read_head(client)
        assert client.status == 101
        client.writer.close()  # the upstream sees the client's close, then the end
        await eventually(lambda: bool(upstream.received), "the upstream connection to end")
        got, rest = decode_all(upstream.received[0])
        assert rest == b""
        assert [frame.payload for frame in got[:12]] == [bytes([n]) * 30000 for n in range(12)]
        assert all(frame.masked for frame in got)
        assert got[12].opcode == CLOSE
        await all_released(gw)


async def test_frames_in_the_same_packet_as_the_upstreams_101(tmp_path: Path) -> None:
    async def eager(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(
            answer_101(key)
            + encode(TEXT, b"welcome", mask=False)
            + encode(PING, b"p", mask=False)
            + encode(BINARY, b"x" * 70000, mask=False)
        )
        await keep_the_rest(reader, state)

    async with raw_upstream(eager) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        offers = b"Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Protocol: chat\r\n"
        client = await raw_client(gw, handshake(extra_headers=offers))
        assert client.status == 101
        (head,) = upstream.heads
        assert len(header_lines(head, b"upgrade")) == 1
        assert len(header_lines(head, b"connection")) == 1
        assert header_lines(head, b"sec-websocket-extensions") == []  # nothing negotiated
        assert header_lines(head, b"sec-websocket-protocol") == [b"chat"]
        assert (await read_frame(client.reader)).payload == b"welcome"
        assert (await read_frame(client.reader)).opcode == PING
        assert (await read_frame(client.reader)).payload == b"x" * 70000
        client.close()
        await all_released(gw)


async def test_a_101_in_pieces_with_frames_after_it(tmp_path: Path) -> None:
    async def pieces(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        await trickle(writer, answer_101(key) + encode(TEXT, b"after the head", mask=False))
        await keep_the_rest(reader, state)

    async with raw_upstream(pieces) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        assert client.status == 101
        assert (await read_frame(client.reader)).payload == b"after the head"
        client.close()


async def test_an_upstream_that_closes_right_after_its_101(tmp_path: Path) -> None:
    """101, a close frame and the end of the connection in one packet: the client gets the
    upstream's close as it was, and nothing is left held."""

    async def brief(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key) + encode(CLOSE, close_payload(4002, b"nope"), mask=False))
        await writer.drain()

    async with raw_upstream(brief) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        assert client.status == 101
        frames, rest = decode_all(await read_to_eof(client.reader))
        assert rest == b""
        assert [(frame.opcode, frame.payload) for frame in frames] == [
            (CLOSE, close_payload(4002, b"nope"))
        ]
        client.close()
        await all_released(gw)


def conversation_from_client() -> list[bytes]:
    """Every frame shape, from a client: 7/16/64-bit lengths, empty frames, a fragmented
    message with pings and a pong between its fragments, then a close."""
    return [
        encode(TEXT, b"a" * 300),  # 16-bit length
        encode(BINARY, b""),  # zero length
        encode(TEXT, b"frag-1 ", fin=False),
        encode(PING, b"between"),
        encode(CONTINUATION, b"", fin=False),
        encode(PONG, b"unsolicited"),
        encode(CONTINUATION, b"frag-2"),
        encode(BINARY, bytes(range(256)) * 300),  # 64-bit length
        encode(CLOSE, close_payload(1000, b"bye")),
    ]


async def test_client_frames_one_byte_at_a_time(tmp_path: Path) -> None:
    async with socket_upstream() as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        assert client.status == 101
        frames = conversation_from_client()
        await trickle(client.writer, b"".join(frames[:7]))  # split at every byte
        await client.send(frames[7])
        await client.send(frames[8])
        got, rest = decode_all(await read_to_eof(client.reader))
        assert rest == b""
        assert not any(frame.masked for frame in got)
        data = [(frame.opcode, frame.payload) for frame in got if frame.opcode != PONG]
        assert (
            data
            == [
                (TEXT, b"a" * 300),
                (BINARY, b""),
                (TEXT, b"frag-1 frag-2"),  # aiohttp echoes the reassembled message
                (BINARY, bytes(range(256)) * 300),
                (CLOSE, close_payload(1000, b"bye")[:2]),  # aiohttp answers the code
            ][: len(data)]
        )
        assert (PONG, b"between") in [(frame.opcode, frame.payload) for frame in got]
        assert got[-1].opcode == CLOSE
        await eventually(lambda: upstream.closes == [1000], "the upstream to see the close")
        client.close()
        await all_released(gw)


async def test_upstream_frames_one_byte_at_a_time(tmp_path: Path) -> None:
    sequence = [
        encode(TEXT, b"b" * 200, mask=False),
        encode(BINARY, b"", mask=False),
        encode(TEXT, b"one ", fin=False, mask=False),
        encode(PING, b"mid", mask=False),
        encode(CONTINUATION, b"two", mask=False),
        encode(CLOSE, close_payload(4005, b"done"), mask=False),
    ]

    async def byte_by_byte(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key))
        await trickle(writer, b"".join(sequence))
        await keep_the_rest(reader, state)

    async with (
        raw_upstream(byte_by_byte) as upstream,
        gateway_to(tmp_path, upstream.url) as gw,
        ClientSession() as session,
        session.ws_connect(ws_url(gw), autoping=False) as ws,
    ):
        assert (await ws.receive(WAIT)).data == "b" * 200
        assert (await ws.receive(WAIT)).data == b""
        message = await ws.receive(WAIT)  # the ping between the fragments comes first
        assert (message.type, message.data) == (WSMsgType.PING, b"mid")
        assert (await ws.receive(WAIT)).data == "one two"
        message = await ws.receive(WAIT)
        assert message.type == WSMsgType.CLOSE
        assert ws.close_code == 4005
    await eventually(lambda: bool(upstream.received), "the upstream connection to end")
    frames, _ = decode_all(upstream.received[0])
    assert [frame.opcode for frame in frames] == [CLOSE]  # aiohttp's answer, masked
    assert frames[0].masked


# =============================================================================================
# Closing
# =============================================================================================


async def test_a_close_handshake_passes_both_ways_and_frees_everything(tmp_path: Path) -> None:
    async with socket_upstream() as upstream, gateway_to(tmp_path, upstream.url) as gw:
        async with ClientSession() as session, session.ws_connect(ws_url(gw)) as ws:
            connection_id = ws._response.headers["X-Connection-Id"]
            assert connection_id in contexts(gw)
            await ws.send_str("x")
            assert (await ws.receive(WAIT)).data == "x"
            await ws.close(code=4001, message=b"done here")
            assert ws.close_code == 1000  # aiohttp's server answers a close with 1000
        await eventually(lambda: upstream.closes == [4001], "the upstream to see 4001")
        await all_released(gw)
        text = await metrics_of(gw)
        assert socket_metric(text, "gateway_websocket_connections_total") == 1.0
        assert socket_metric(text, "gateway_websocket_active_connections") == 0.0


async def test_a_close_without_payload_passes_both_ways(tmp_path: Path) -> None:
    async def answers_empty_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key))
        frame = await read_frame(reader)
        state.received.append(encode(frame.opcode, frame.payload, mask=False))
        writer.write(encode(CLOSE, b"", mask=False))
        await writer.drain()
        await read_to_eof(reader)

    async with (
        raw_upstream(answers_empty_close) as upstream,
        gateway_to(tmp_path, upstream.url) as gw,
    ):
        client = await raw_client(gw)
        await client.send(encode(CLOSE, b""))
        frames, rest = decode_all(await read_to_eof(client.reader))
        assert [(frame.opcode, frame.payload) for frame in frames] == [(CLOSE, b"")]
        assert rest == b""
        assert upstream.received == [encode(CLOSE, b"", mask=False)]
        client.close()
        await all_released(gw)


async def test_a_client_that_vanishes_is_a_1001_to_the_upstream(tmp_path: Path) -> None:
    async with socket_upstream() as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        await client.send(encode(TEXT, b"hi"))
        assert (await read_frame(client.reader)).payload == b"hi"
        client.writer.transport.abort()
        await eventually(lambda: upstream.closes == [1001], "the upstream to get 1001")
        await all_released(gw)


async def test_an_upstream_that_vanishes_is_a_1001_to_the_client(tmp_path: Path) -> None:
    async def vanish(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key))
        await read_frame(reader)  # the client's message, then gone without a close frame
        writer.transport.abort()

    async with raw_upstream(vanish) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        await client.send(encode(TEXT, b"hi"))
        frames, rest = decode_all(await read_to_eof(client.reader))
        assert [(frame.opcode, frame.code) for frame in frames] == [(CLOSE, 1001)]
        assert rest == b""
        client.close()
        await all_released(gw)


async def test_a_gateway_close_is_never_written_inside_a_frame(tmp_path: Path) -> None:
    """The upstream stops in the middle of a frame; the idle timeout ends the socket: the
    client must get no close frame inside the payload (it is just cut), the upstream, whose
    direction is between frames, gets 1001."""
    half = encode(BINARY, b"h" * 1000, mask=False)[:50]

    async def stalls(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key) + half)
        await keep_the_rest(reader, state)

    async with (
        raw_upstream(stalls) as upstream,
        gateway_to(tmp_path, upstream.url, ws_idle_timeout=0.5) as gw,
    ):
        client = await raw_client(gw)
        assert await read_to_eof(client.reader) == half
        client.close()
        await eventually(lambda: bool(upstream.received), "the upstream connection to end")
        frames, rest = decode_all(upstream.received[0])
        assert [(frame.opcode, frame.code, frame.masked) for frame in frames] == [
            (CLOSE, 1001, True)
        ]
        assert rest == b""
        await all_released(gw)


# =============================================================================================
# Peers that break the rules (bugs: the broken side's own direction is left "inside a header",
# so the gateway never sends the close frame its code means to send; the good frames before
# the bad one in the same read are dropped)
# =============================================================================================


async def test_garbage_from_the_upstream_is_a_1002_close_to_the_client(tmp_path: Path) -> None:
    async def garbage(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key))
        await read_frame(reader)  # the tunnel is up
        writer.write(b"\x83\x00")  # opcode 3 is reserved: a protocol error
        await keep_the_rest(reader, state)

    async with raw_upstream(garbage) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        await client.send(encode(TEXT, b"go"))
        frames, rest = decode_all(await read_to_eof(client.reader))
        # The upstream broke the protocol: the client should be told so with a close frame
        # (1002), as end(error.code, GOING_AWAY, ...) in Tunnel._refuse intends.
        assert [(frame.opcode, frame.code) for frame in frames] == [(CLOSE, 1002)]
        assert rest == b""
        client.close()
        await eventually(lambda: bool(upstream.received), "the upstream connection to end")
        upstream_frames, _ = decode_all(upstream.received[0])
        assert [(frame.opcode, frame.code) for frame in upstream_frames] == [(CLOSE, 1001)]
        await all_released(gw)


async def test_garbage_from_the_client_is_a_close_to_the_upstream_too(tmp_path: Path) -> None:
    async with (
        raw_upstream(_echo_first_and_keep) as upstream,
        gateway_to(tmp_path, upstream.url) as gw,
    ):
        client = await raw_client(gw)
        await client.send(encode(TEXT, b"fine"))
        assert (await read_frame(client.reader)).payload == b"fine"  # relayed and echoed
        await client.send(encode(TEXT, b"unmasked", mask=False))  # a client frame must be masked
        frames, rest = decode_all(await read_to_eof(client.reader))
        assert [(frame.opcode, frame.code) for frame in frames] == [(CLOSE, 1002)]
        client.close()
        await eventually(lambda: bool(upstream.received), "the upstream connection to end")
        upstream_frames, rest = decode_all(upstream.received[0])
        # Tunnel._refuse ends with end(1002, 1002, ...): the upstream should get a close
        # frame, not a bare TCP close (which it can only take for 1006, an abnormal closure).
        assert [(frame.opcode, frame.code) for frame in upstream_frames] == [(CLOSE, 1002)]
        assert rest == b""
        await all_released(gw)


async def _echo_first_and_keep(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
) -> None:
    writer.write(answer_101(key))
    first = await read_frame(reader)
    writer.write(encode(first.opcode, first.payload, mask=False))
    await keep_the_rest(reader, state)


async def _answer_and_keep(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
) -> None:
    writer.write(answer_101(key))
    await keep_the_rest(reader, state)


async def test_a_too_big_message_from_the_client_closes_the_upstream_with_1009(
    tmp_path: Path,
) -> None:
    async with (
        socket_upstream() as upstream,
        gateway_to(tmp_path, upstream.url, ws_max_message=1000) as gw,
        ClientSession() as session,
        session.ws_connect(ws_url(gw)) as ws,
    ):
        await ws.send_bytes(b"x" * 1000)  # the limit itself passes
        assert (await ws.receive(WAIT)).data == b"x" * 1000
        await ws.send_bytes(b"x" * 1001)
        message = await ws.receive(WAIT)
        assert message.type == WSMsgType.CLOSE
        assert ws.close_code == 1009  # the client is told
        # ... and so should the upstream be (end(1009, 1009, ...)); it sees no close frame.
        await eventually(lambda: bool(upstream.closes), "the upstream's socket to end")
        assert upstream.closes == [1009]


async def test_a_too_big_message_from_the_upstream_closes_the_client_with_1009(
    tmp_path: Path,
) -> None:
    async def big(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key))
        await read_frame(reader)
        writer.write(encode(BINARY, b"y" * 1001, mask=False))
        await keep_the_rest(reader, state)

    async with (
        raw_upstream(big) as upstream,
        gateway_to(tmp_path, upstream.url, ws_max_message=1000) as gw,
    ):
        client = await raw_client(gw)
        await client.send(encode(TEXT, b"go"))
        frames, _ = decode_all(await read_to_eof(client.reader))
        assert [(frame.opcode, frame.code) for frame in frames] == [(CLOSE, 1009)]
        client.close()
        await eventually(lambda: bool(upstream.received), "the upstream connection to end")
        # received: what came after the "go" frame the handler read itself.
        upstream_frames, _ = decode_all(upstream.received[0])
        assert [(frame.opcode, frame.code) for frame in upstream_frames] == [(CLOSE, 1001)]


async def test_good_upstream_frames_before_a_bad_one_in_the_same_packet_are_relayed(
    tmp_path: Path,
) -> None:
    """What the client gets must not depend on how TCP cut the stream: frames that were valid
    and complete before the bad one are relayed (they would be, had they come a packet
    earlier); Tunnel.from_upstream drops the whole read instead."""

    async def last_words(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key))
        await read_frame(reader)
        writer.write(encode(TEXT, b"last words", mask=False) + b"\x83\x00")
        await keep_the_rest(reader, state)

    async with raw_upstream(last_words) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        await client.send(encode(TEXT, b"go"))
        frames, _ = decode_all(await read_to_eof(client.reader))
        client.close()
        assert frames
        assert (frames[0].opcode, frames[0].payload) == (TEXT, b"last words")


async def test_good_client_frames_before_a_bad_one_in_the_same_packet_are_relayed(
    tmp_path: Path,
) -> None:
    async with raw_upstream(_answer_and_keep) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        await client.send(encode(TEXT, b"hello") + encode(TEXT, b"unmasked", mask=False))
        await read_to_eof(client.reader)
        client.close()
        await eventually(lambda: bool(upstream.received), "the upstream connection to end")
        frames, _ = decode_all(upstream.received[0])
        assert frames
        assert (frames[0].opcode, frames[0].payload) == (TEXT, b"hello")


# =============================================================================================
# Back pressure
# =============================================================================================


async def test_a_client_that_stops_reading_stops_the_upstream_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    total = 48
    chunk = 1024 * 1024
    progress: dict[str, Any] = {"sent": 0, "blocked": False}

    async def flood(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key))
        await read_frame(reader)
        for number in range(total):
            writer.write(encode(BINARY, bytes([number]) * chunk, mask=False))
            if writer.transport.get_write_buffer_size() > 0:
                progress["blocked"] = True  # the gateway does not take more: it stopped reading
            await writer.drain()
            progress["sent"] = number + 1
        await keep_the_rest(reader, state)

    async with raw_upstream(flood) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        await client.send(encode(TEXT, b"go"))
        await eventually(lambda: progress["blocked"], "the upstream's writes to be held back")
        (tunnel,) = registry(gw).tunnels.values()
        assert tunnel.client.transport is not None
        assert tunnel.client.transport.get_write_buffer_size() < 8 * chunk
        assert progress["sent"] < total
        for number in range(total):  # now read everything: reading resumes, nothing is lost
            frame = await read_frame(client.reader)
            assert (frame.opcode, len(frame.payload)) == (BINARY, chunk)
            assert frame.payload == bytes([number]) * chunk
        client.close()
        await all_released(gw)


async def test_a_socket_ended_while_its_client_does_not_read_does_not_linger(
    tmp_path: Path,
) -> None:
    """The client stops reading, the upstream floods, the idle timeout ends the socket. The
    registry lets the socket go at once (its place is free for another), so the connection
    must go too: Tunnel._finish only calls transport.close(), which waits for the write buffer
    to drain, and a client that never reads keeps the connection, its descriptor and buffered
    bytes forever, uncounted (no sweep aborts a closing connection)."""
    chunk = 1024 * 1024
    progress = {"blocked": False}

    async def flood(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key))
        await read_frame(reader)
        for _ in range(64):
            writer.write(encode(BINARY, b"f" * chunk, mask=False))
            if writer.transport.get_write_buffer_size() > 0:
                progress["blocked"] = True
            await writer.drain()

    async with (
        raw_upstream(flood) as upstream,
        gateway_to(tmp_path, upstream.url, ws_idle_timeout=0.5) as gw,
    ):
        server = gw.worker.server
        assert server is not None
        client = await raw_client(gw)
        await client.send(encode(TEXT, b"go"))
        await eventually(lambda: progress["blocked"], "the upstream's writes to be held back")
        await all_released(gw)  # the idle timeout ended the socket, its place is free
        try:
            await eventually(lambda: not server.connections, "the gateway to drop the connection")
        finally:
            client.writer.transport.abort()


# =============================================================================================
# Limits and handshakes
# =============================================================================================


async def test_failed_handshakes_hold_no_place(tmp_path: Path) -> None:
    """A handshake admitted (PrepareWebSocket, WebSocketProxy) and then failed (the upstream
    refuses, answers a wrong accept, is unreachable) must leave no count behind."""
    bad_accept = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    bad_accept += b"Connection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n"

    async def mixed(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        number = len(state.heads)
        if number == 1:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
        elif number == 2:
            writer.write(bad_accept)
        elif number == 3:
            return  # closed without an answer
        else:
            writer.write(answer_101(key))
            await keep_the_rest(reader, state)
            return
        await writer.drain()

    async with (
        raw_upstream(mixed) as upstream,
        gateway_to(tmp_path, upstream.url, ws_max_per_address=1) as gw,
    ):
        statuses = []
        for _ in range(3):
            client = await raw_client(gw)
            statuses.append(client.status)
            await read_to_eof(client.reader)
            client.close()
        assert statuses == [403, 502, 502]
        sockets = registry(gw)
        assert not sockets.tunnels
        assert not sockets.per_address
        first = await raw_client(gw)  # the one place is free
        assert first.status == 101
        second = await raw_client(gw)  # and it is the only one
        assert second.status == 429
        second.close()
        first.close()
        await all_released(gw)
        text = await metrics_of(gw)
        assert socket_metric(text, "gateway_websocket_connections_total") == 1.0
        assert socket_metric(text, "gateway_websocket_active_connections") == 0.0


async def test_an_unreachable_upstream_holds_no_place(tmp_path: Path) -> None:
    async with gateway_to(tmp_path, f"http://{LOOPBACK}:{free_port()}", ws_max_per_address=1) as gw:
        for _ in range(3):
            client = await raw_client(gw)
            assert client.status == 502
            client.close()
        sockets = registry(gw)
        assert not sockets.tunnels
        assert not sockets.per_address
        assert socket_metric(await metrics_of(gw), "gateway_websocket_connections_total") == 0.0


async def test_the_per_tenant_limit_holds_and_is_released(tmp_path: Path) -> None:
    route = "{name: partner-socket, path: /partner, upstream: sockets, auth: api_key,"
    route += " websocket: true, strip_prefix: true}"
    async with socket_upstream() as upstream:
        table = routes({"sockets": [upstream.url]}, route)
        settings = quiet_settings(
            ws_max_per_tenant=1,
            auth=auth_settings(tmp_path),
        )
        async with running_gateway(table, tmp_path, settings) as gw, ClientSession() as session:
            core = gw.core
            tenant = await core.tenants.create("Acme", [], ["127.0.0.0/8"], None, CALL)
            _record, key = await core.keys.create(tenant.id, actor_id=None, call=CALL)
            url = ws_url(gw, "/partner/ws")
            first = await session.ws_connect(url, headers={"X-API-Key": key})
            connection_id = first._response.headers["X-Connection-Id"]
            context = contexts(gw)[connection_id]
            assert (context["auth_method"], context["tenant_id"]) == ("api_key", tenant.id)
            assert registry(gw).per_tenant == {tenant.id: 1}
            with pytest.raises(WSServerHandshakeError) as refused:
                await session.ws_connect(url, headers={"X-API-Key": key})
            assert refused.value.status == 429
            await first.close()
            await eventually(lambda: not registry(gw).per_tenant, "the tenant's count to go")
            second = await session.ws_connect(url, headers={"X-API-Key": key})
            await second.send_str("again")
            assert (await second.receive(WAIT)).data == "again"
            await second.close()
            await all_released(gw)


async def test_concurrent_handshakes_cannot_pass_the_per_address_limit(tmp_path: Path) -> None:
    """ws_max_per_address=1 and two handshakes at once: one must be refused (429). admit()
    only compares the count of sockets already added, and a socket is added only after the
    upstream's 101, so every handshake in flight passes admit: the limit does not hold."""
    release = asyncio.Event()

    async with (
        raw_upstream(answer_when(release)) as upstream,
        gateway_to(tmp_path, upstream.url, ws_max_per_address=1) as gw,
    ):
        clients = [await raw_client(gw, answer=False) for _ in range(2)]
        heads = [asyncio.ensure_future(read_head(client)) for client in clients]
        # Either both reached the upstream (both were admitted), or one was refused already.
        await eventually(
            lambda: len(upstream.heads) == 2 or any(head.done() for head in heads),
            "both handshakes upstream, or one refused",
        )
        release.set()
        await asyncio.gather(*heads)
        statuses = sorted(client.status for client in clients)
        for client in clients:
            client.close()
        assert statuses == [101, 429]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(handshake().replace(b"GET", b"POST", 1), 400, id="post"),
        pytest.param(handshake().replace(b"HTTP/1.1", b"HTTP/1.0", 1), 400, id="http-1.0"),
        pytest.param(handshake().replace(b"Version: 13", b"Version: 8"), 400, id="version-8"),
        pytest.param(handshake().replace(KEY, b"c2hvcnQ="), 400, id="key-not-16-bytes"),
        pytest.param(handshake().replace(KEY, b"!!notbase64!!!!!!!!!!!=="), 400, id="key-junk"),
        pytest.param(handshake().replace(b"Upgrade: websocket", b"Upgrade: h2c"), 400, id="h2c"),
    ],
)
async def test_bad_client_handshakes_never_reach_the_upstream(
    tmp_path: Path, request_bytes: bytes, status: int
) -> None:
    async with raw_upstream(_answer_and_keep) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw, request_bytes)
        assert client.status == status
        if b"Version: 8" in request_bytes:
            assert header_lines(client.head, b"sec-websocket-version") == [b"13"]
        await read_to_eof(client.reader)
        client.close()
        assert upstream.heads == []
        assert not registry(gw).per_address


async def test_the_upstream_may_not_choose_an_extension_it_was_not_offered(
    tmp_path: Path,
) -> None:
    """RFC 6455 section 4.1: an extension in the answer that the handshake did not offer fails
    the connection. The gateway offers none, so an upstream that answers permessage-deflate
    will send compressed frames (RSV1) that no one can read: 502, not 101."""

    async def deflate(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, state: RawUpstream
    ) -> None:
        writer.write(answer_101(key, b"Sec-WebSocket-Extensions: permessage-deflate\r\n"))
        await keep_the_rest(reader, state)

    async with raw_upstream(deflate) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        client.close()
        assert client.status == 502


async def test_a_refused_upgrade_keeps_each_set_cookie_of_the_upstream(tmp_path: Path) -> None:
    """'any other answer is passed back as it is': UpstreamSide.on_header folds repeated
    headers with ', ', which turns two Set-Cookie headers into one broken cookie."""

    async def refuse(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=403, text="no")
        response.headers.add("Set-Cookie", "a=1; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT")
        response.headers.add("Set-Cookie", "b=2; Path=/")
        return response

    async with upstream_server(refuse) as upstream, gateway_to(tmp_path, upstream.url) as gw:
        client = await raw_client(gw)
        assert client.status == 403
        client.close()
        assert header_lines(client.head, b"set-cookie") == [
            b"a=1; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
            b"b=2; Path=/",
        ]


async def test_an_https_upstream_gets_its_websocket_over_tls(tmp_path: Path) -> None:
    """Plain forwarding connects to an https target with TLS (TargetPool.connect); the websocket
    path must too. WebSocketProxy calls loop.create_connection without ssl, so the handshake,
    with the signed identity headers, goes in clear text to the TLS port."""
    first_bytes: list[bytes] = []
    done = asyncio.Event()

    async def tls_port(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(WAIT):
                first_bytes.append(await reader.read(5))
        finally:
            writer.close()
            done.set()

    async with (
        tcp_server(tls_port) as port,
        gateway_to(tmp_path, f"https://{LOOPBACK}:{port}") as gw,
    ):
        client = await raw_client(gw)
        client.close()
        async with asyncio.timeout(WAIT):
            await done.wait()
    assert first_bytes
    assert first_bytes[0][:1] == b"\x16", f"not a TLS ClientHello: {first_bytes[0]!r}"
