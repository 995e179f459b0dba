"""What the proxy tests share: a scriptable raw upstream (for bytes aiohttp would never send),
a hashing upstream handler, a keep-alive raw client, peak memory, and the usual gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import resource
import select
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from aiohttp import web

from tests.support import (
    LOOPBACK,
    SEEN,
    RawResponse,
    RunningGateway,
    Upstream,
    parse_head,
    routes,
    running_gateway,
)

MiB = 1024 * 1024


def single_route(targets: list[str], *, route: str = "", **upstream: str) -> str:
    """A routes.yaml with one upstream `up` (options as keyword arguments) and one route `/` on
    it (`route`: more flow-mapping entries, e.g. `max_body: 1k`)."""
    options = {"connect_timeout": "1s", "timeout": "5s", **upstream}
    lines = ["version: 1", "upstreams:", "  up:", f"    targets: {json.dumps(targets)}"]
    lines += [f"    {key}: {value}" for key, value in options.items()]
    extra = f", {route}" if route else ""
    lines += ["routes:", f"  - {{name: up, path: /, upstream: up, auth: none{extra}}}"]
    return "\n".join(lines) + "\n"


ECHO_ROUTES = (
    "{name: echo, path: /echo, upstream: echo, auth: none}",
    "{name: api, path: /api/v1, upstream: echo, auth: none, strip_prefix: true}",
)


@pytest.fixture
async def gateway(upstream: Upstream, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """The gateway with `/echo` and `/api/v1` (prefix stripped) on the echo upstream."""
    async with running_gateway(routes({"echo": [upstream.url]}, *ECHO_ROUTES), tmp_path) as gw:
        yield gw


# -- bodies ------------------------------------------------------------------------------------

_BLOCK = random.Random(20240601).randbytes(MiB)


def body_chunks(total: int, size: int = MiB) -> Iterator[bytes]:
    """`total` bytes in pieces of `size`, each stamped with its index so that a lost, repeated
    or reordered piece changes the hash."""
    index = 0
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        yield (index.to_bytes(8, "big") + _BLOCK[8:piece])[:piece]
        sent += piece
        index += 1


def digest_of(total: int, size: int = MiB) -> str:
    digest = hashlib.sha256()
    for chunk in body_chunks(total, size):
        digest.update(chunk)
    return digest.hexdigest()


async def hashing_handler(request: web.Request) -> web.StreamResponse:
    """Read the body as it streams, keeping only its size and hash; answer them with the
    framing the request arrived with. `?pace=<seconds>`: pause that long after every MiB read,
    an upstream slower than its client."""
    pace = float(request.query.get("pace", "0"))
    digest = hashlib.sha256()
    size = 0
    chunks = request.content.iter_chunked(MiB) if pace else request.content.iter_any()
    async for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        if pace:
            await asyncio.sleep(pace)
    document = {
        "method": request.method,
        "size": size,
        "sha256": digest.hexdigest(),
        "content_length": request.headers.get("Content-Length"),
        "transfer_encoding": request.headers.get("Transfer-Encoding"),
    }
    request.app[SEEN].append(document)
    return web.json_response(document)


# -- memory ------------------------------------------------------------------------------------


def reset_peak_rss() -> None:
    """Start a new peak: getrusage's maxrss is the peak of the process's whole life (any earlier
    test could have set it and hide growth here); Linux lets VmHWM be reset."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss() -> int:
    """Peak resident memory in bytes: VmHWM where Linux has it, else getrusage's maxrss."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- a raw client that keeps its connection --------------------------------------------------

WAIT = 30.0  # how long a test waits for something that should happen at once (a loaded CI box)


def request_bytes(
    method: str, target: bytes, *lines: bytes, body: bytes = b"", host: bytes = b"gw.test"
) -> bytes:
    """A request head (Host first, then `lines` as given) and `body`, as they go on the wire."""
    head = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method.encode(), target, host)
    return head + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body


def chunked(*pieces: bytes, extension: bytes = b"", trailers: bytes = b"") -> bytes:
    """`pieces` in chunked coding (RFC 9112 section 7.1)."""
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in pieces if p)
    return out + b"0\r\n" + trailers + b"\r\n"


class RawClient:
    """One client connection to the gateway, written byte for byte and kept alive."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, data: bytes, method: str = "GET") -> RawResponse:
        self.writer.write(data)
        await self.writer.drain()
        return await asyncio.wait_for(read_response(self.reader, method), WAIT)

    async def rest(self) -> bytes:
        """Everything the gateway sends until it closes the connection."""
        return await asyncio.wait_for(self.reader.read(), WAIT)


@asynccontextmanager
async def raw_client(port: int) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        yield RawClient(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def send_raw(port: int, data: bytes, method: str = "GET") -> RawResponse:
    """One request on a connection of its own; the first response to it."""
    async with raw_client(port) as connection:
        return await connection.exchange(data, method)


async def read_response(reader: asyncio.StreamReader, method: str = "GET") -> RawResponse:
    """One response off a kept-alive connection, framed as RFC 9112 section 6.3 says."""
    response = parse_head(await reader.readuntil(b"\r\n\r\n"))
    status = response.status
    if method == "HEAD" or status in (204, 304) or status < 200:
        return response
    length = response.header("Content-Length")
    if (response.header("Transfer-Encoding") or "").lower() == "chunked":
        response.body = await _read_chunked(reader)
    elif length is not None:
        response.body = await reader.readexactly(int(length))
    return response


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailer fields
            return body
        body += (await reader.readexactly(size + 2))[:size]


# -- a scriptable raw upstream -----------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request as the raw upstream read it; `index` counts requests on its connection."""

    connection: int
    index: int
    head: bytes
    body: bytes

    @property
    def target(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0].split(b" ")[1]

    @property
    def method(self) -> bytes:
        return self.head.split(b" ", 1)[0]


Then = Literal["keep", "close", "reset", "hang"]


@dataclass(frozen=True)
class Reply:
    """What the raw upstream does with a request: write `data`, then keep the connection,
    close it (FIN), reset it (RST), or hang on without reading."""

    data: bytes = b""
    then: Then = "keep"


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

Script = Callable[[Received], Reply]


@dataclass
class RawUpstream:
    port: int
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    closed: int = 0  # connections closed, by either side

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def count(self, target: bytes) -> int:
        """Requests received for `target` (path and query)."""
        return sum(1 for request in self.received if request.target == target)


async def _read_request(
    reader: asyncio.StreamReader, read_body: bool
) -> tuple[bytes, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if not read_body:
        return head, b""
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        return head, await _read_chunked(reader)
    return head, await reader.readexactly(int(fields.get(b"content-length", b"0")))


@asynccontextmanager
async def raw_upstream(script: Script, *, read_bodies: bool = True) -> AsyncIterator[RawUpstream]:
    """A plain TCP server on loopback that answers each request as `script` says, once it has
    read the request's body too (unless `read_bodies` is false: answering early)."""
    upstream = RawUpstream(0)
    tasks: set[asyncio.Task[None]] = set()
    writers: set[asyncio.StreamWriter] = set()
    stop = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.add(writer)
        upstream.connections += 1
        connection = upstream.connections
        index = 0
        try:
            while (request := await _read_request(reader, read_bodies)) is not None:
                received = Received(connection, index, *request)
                upstream.received.append(received)
                index += 1
                reply = script(received)
                writer.write(reply.data)
                await writer.drain()
                if reply.then == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if reply.then == "close":
                    return
                if reply.then == "hang":
                    await stop.wait()
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            upstream.closed += 1
            writers.discard(writer)
            tasks.discard(task)

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    upstream.port = server.sockets[0].getsockname()[1]
    try:
        yield upstream
    finally:
        server.close()
        stop.set()
        for writer in list(writers):
            writer.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port whose listen queue is full: a connection to it is neither accepted nor
    refused (the kernel drops the SYN), so connecting times out."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        address = listener.getsockname()
        while len(fillers) < 16:
            filler = socket.socket()
            fillers.append(filler)
            filler.setblocking(False)
            filler.connect_ex(address)
            _, connected, _ = select.select([], [filler], [], 0.5)
            if not connected:
                break  # this one hangs: the queue is full
        else:
            pytest.skip("could not fill a listen queue on this system")
        yield address[1]
    finally:
        for sock in [*fillers, listener]:
            sock.close()


async def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition` to hold (it should soon: WAIT is only a safety net)."""
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.01)
