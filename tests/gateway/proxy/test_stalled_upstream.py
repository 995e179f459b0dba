"""A request body streamed to an upstream that stops reading it (docs/routes.md, `timeout`).

The upstream is a raw socket with a small receive buffer that reads the request head and then
never reads again: its window closes, the gateway's writes pile up, and only the upstream's
timeout can end the exchange. The client streams a large body over a raw socket, as a client
would, and must get a 504 while the upstream connection is closed, not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.gateway.proxy.conftest import (
    WAIT,
    MiB,
    body_chunks,
    digest_of,
    hashing_handler,
    raw_client,
    request_bytes,
    single_route,
)
from tests.support import LOOPBACK, RawResponse, parse_responses, running_gateway, upstream_server

BODY_SIZE = 8 * MiB
PIECE = 64 * 1024


@dataclass
class StallingUpstream:
    """Accepts, reads one request head, answers `GET /ok` at once and otherwise never reads
    another byte (and never answers)."""

    port: int
    listener: socket.socket
    stalled: list[socket.socket] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def read_to_end(self, sock: socket.socket) -> int:
        """Start reading again: what the gateway had sent, until it closes (its end of stream).
        Returns the bytes read; times out if the gateway kept the connection open."""
        loop = asyncio.get_running_loop()
        total = 0
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    data = await loop.sock_recv(sock, 1024 * 1024)
                except ConnectionResetError:
                    return total  # aborted: closed all the same
                if not data:
                    return total
                total += len(data)


async def _read_head(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        # One byte at a time: nothing of the body is taken off the socket.
        byte = await loop.sock_recv(sock, 1)
        if not byte:
            return head
        head += byte
    return head


@asynccontextmanager
async def stalling_upstream() -> AsyncIterator[StallingUpstream]:
    loop = asyncio.get_running_loop()
    listener = socket.socket()
    # Set before listen(): accepted sockets inherit it, and the window is scaled to it.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind((LOOPBACK, 0))
    listener.listen(8)
    listener.setblocking(False)
    upstream = StallingUpstream(listener.getsockname()[1], listener)
    accepted: list[socket.socket] = []

    async def serve(sock: socket.socket) -> None:
        head = await _read_head(loop, sock)
        upstream.heads.append(head)
        if head.startswith(b"GET /ok "):
            await loop.sock_sendall(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return
        upstream.stalled.append(sock)

    async def accept() -> None:
        tasks = set()
        while True:
            sock, _ = await loop.sock_accept(listener)
            sock.setblocking(False)
            accepted.append(sock)
            task = loop.create_task(serve(sock))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    acceptor = loop.create_task(accept())
    try:
        yield upstream
    finally:
        acceptor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await acceptor
        for sock in [*accepted, listener]:
            sock.close()


def _pieces(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        size = min(PIECE, total - sent)
        yield b"b" * size
        sent += size


def content_length_request() -> Iterator[bytes]:
    yield request_bytes("POST", b"/upload", b"Content-Length: %d" % BODY_SIZE)
    yield from _pieces(BODY_SIZE)


def chunked_request() -> Iterator[bytes]:
    yield request_bytes("POST", b"/upload", b"Transfer-Encoding: chunked")
    for piece in _pieces(BODY_SIZE):
        yield b"%x\r\n%b\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


async def stream_and_read(
    port: int, pieces: Iterator[bytes]
) -> tuple[list[RawResponse], bytes, bool]:
    """Write the request as fast as the gateway takes it while reading whatever comes back until
    the gateway closes the connection: the responses, the raw bytes, and whether the stream
    ended cleanly (False: the connection was reset)."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            for piece in pieces:
                writer.write(piece)
                await writer.drain()

    sender = asyncio.create_task(send())
    received = b""
    clean = True
    try:
        async with asyncio.timeout(WAIT):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        clean = False
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
    return parse_responses(received), received, clean


STREAMS = [
    pytest.param(content_length_request, id="content-length"),
    pytest.param(chunked_request, id="chunked"),
]


@pytest.mark.parametrize("request_pieces", STREAMS)
async def test_a_body_the_upstream_stops_reading_ends_in_504_within_its_timeout(
    tmp_path: Path, request_pieces: Callable[[], Iterator[bytes]]
) -> None:
    async with (
        stalling_upstream() as upstream,
        running_gateway(single_route([upstream.url], route="timeout: 1s"), tmp_path) as gw,
    ):
        responses, raw, clean = await stream_and_read(gw.port, request_pieces())

        assert len(responses) == 1, raw[:500]
        response = responses[0]
        assert response.status == 504
        assert response.header("Content-Type") == "application/problem+json"
        assert response.json()["error"] == "upstream_timeout"
        assert response.header("Connection") == "close"  # the rest of the body was not read
        # ... and the gateway ended its side after the answer and let the client finish: a
        # close with the body unread would reset the connection, which can destroy the answer.
        assert clean

        # The upstream connection was closed, not kept: reading again, the upstream finds the
        # end of the stream, short of the whole body.
        assert len(upstream.stalled) == 1
        taken = await upstream.read_to_end(upstream.stalled[0])
        assert taken < BODY_SIZE

        # The next request opens a connection of its own and is served; the failure was
        # counted as the upstream's timeout.
        async with raw_client(gw.port) as client:
            after = await client.exchange(request_bytes("GET", b"/ok"))
            metrics = await client.exchange(request_bytes("GET", b"/metrics"))
        assert after.status == 200
        assert after.body == b"ok"
        assert len(upstream.heads) == 2
        assert 'gateway_upstream_errors_total{kind="timeout",upstream="up"} 1.0' in (
            metrics.body.decode()
        )


async def test_an_upstream_slower_than_its_timeout_in_all_but_reading_steadily_is_not_cut(
    tmp_path: Path,
) -> None:
    # The timeout bounds each wait for the upstream to take more, not the whole upload: 48 MiB
    # at a pause of 0.1 s a MiB take longer than the 3 s timeout, and arrive whole. (What the
    # kernel buffers when the last byte is handed over, a few MiB, is read within the timeout.)
    total = 48 * MiB
    async with (
        upstream_server(hashing_handler) as upstream,
        running_gateway(
            single_route([upstream.url], route="timeout: 3s, max_body: 64m"), tmp_path
        ) as gw,
    ):
        head = request_bytes(
            "POST", b"/upload?pace=0.1", b"Content-Length: %d" % total, b"Connection: close"
        )
        responses, raw, clean = await stream_and_read(gw.port, iter([head, *body_chunks(total)]))
    assert clean
    assert [response.status for response in responses] == [200], raw[:500]
    document = responses[0].json()
    assert document["size"] == total
    assert document["sha256"] == digest_of(total)


async def test_a_body_read_whole_before_the_timeout_leaves_the_client_connection_usable(
    tmp_path: Path,
) -> None:
    # A small body is read whole and sent in one go; the upstream never answers. The 504
    # comes with the request complete, so the client's connection is kept.
    async with (
        stalling_upstream() as upstream,
        running_gateway(single_route([upstream.url], route="timeout: 1s"), tmp_path) as gw,
        raw_client(gw.port) as client,
    ):
        response = await client.exchange(
            request_bytes("POST", b"/upload", b"Content-Length: 5", body=b"hello")
        )
        assert response.status == 504
        assert response.json()["error"] == "upstream_timeout"
        assert response.header("Connection") is None
        after = await client.exchange(request_bytes("GET", b"/ok"))
        assert (after.status, after.body) == (200, b"ok")
