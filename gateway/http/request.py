"""A parsed request head and its streaming body."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Final, Protocol

# One header as received: (lower-case name, name as sent, value).
Header = tuple[bytes, bytes, bytes]

BODY_HIGH_WATER: Final = 256 * 1024  # stop reading the socket when this much body is unread
BODY_LOW_WATER: Final = 64 * 1024


class Upgraded(Protocol):
    """What takes a connection over once a request was answered 101 (a websocket tunnel, in
    gateway/websocket): from then on the client's bytes, its pauses and its going away are
    its, as the upgraded protocol takes the transport in Uvicorn. This layer knows no more of
    it than these calls, so that the HTTP server depends on nothing above it."""

    def start(self, rest: bytes) -> None:
        """The 101 is written: take `rest`, what the client sent after the upgrade request."""

    def from_client(self, data: bytes) -> None: ...

    def client_paused(self, paused: bool) -> None:
        """The client is slow to read (True) or caught up (False)."""

    def client_lost(self) -> None: ...

    def shut_down(self) -> None:
        """The gateway is stopping: end the protocol's way, then the connection is dropped."""

    def wait(self) -> Awaitable[None]:
        """Done when the upgraded protocol has ended."""
        ...


class Stream(Protocol):
    """A response whose body follows its head (gateway.http.response.ResponseStream)."""

    async def write(self, data: bytes) -> None: ...

    async def end(self) -> None: ...


class Connection(Protocol):
    """The client connection a request came on (gateway.http.connection.HttpConnection), as
    its request, body and response stream, and the layers above, use it: a protocol here so
    that this module, below the connection, need not import it."""

    loop: asyncio.AbstractEventLoop
    peer: str
    transport: asyncio.Transport | None  # None once closed

    def pause_reading(self, body: Body) -> None: ...

    def resume_reading(self, body: Body) -> None: ...

    def write_raw(self, data: bytes) -> None: ...

    async def drain(self) -> None:
        """Wait while the client is slow to take what was written."""

    def start_stream(
        self,
        request: Request,
        status: int,
        headers: list[tuple[bytes, bytes]],
        content_length: int | None,
        *,
        dated: bool = False,
    ) -> Stream:
        """Write a response head; the body follows through the returned stream."""
        ...

    def take_over(self, upgraded: Upgraded, head: bytes) -> None:
        """Answer an upgrade with `head` (the 101) and hand the connection to `upgraded`."""

    def abort(self) -> None:
        """Drop the connection now."""


class BodyError(Exception):
    """The request body could not be read to its end: malformed, too slow, or the client
    went away. `status` and `detail` are what the client is told."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Body:
    """The request body as it arrives; `read()` hands out what is there, with flow control."""

    __slots__ = (
        "_chunks",
        "_connection",
        "_error",
        "_size",
        "_waiter",
        "complete",
        "last_data",
        "received",
    )

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._chunks: list[bytes] = []
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BodyError | None = None
        self.complete = False
        self.received = 0
        self.last_data = 0.0

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        self.received += len(data)
        if self._size > BODY_HIGH_WATER:
            self._connection.pause_reading(self)
        self._wake()

    def feed_eof(self) -> None:
        self.complete = True
        self._wake()

    def fail(self, error: BodyError) -> None:
        if not self.complete and self._error is None:
            self._error = error
            self._wake()

    @property
    def waiting(self) -> bool:
        """A reader is waiting for data that has not come (for the body timeout)."""
        return self._waiter is not None and not self.complete

    async def read(self) -> bytes:
        """What has arrived since the last read; b"" once the body is complete."""
        while not self._chunks:
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = self._connection.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        if self._size > BODY_LOW_WATER:
            self._size = 0
            self._connection.resume_reading(self)
        else:
            self._size = 0
        return data

    async def read_all(self) -> bytes:
        """The whole body (callers check its declared size first)."""
        parts: list[bytes] = []
        while True:
            data = await self.read()
            if not data:
                return b"".join(parts)
            parts.append(data)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Request:
    """One request: method, target, headers as received, and the body if it has one."""

    __slots__ = (
        "body",
        "chunked",
        "connection",
        "content_length",
        "continue_sent",
        "expect_continue",
        "headers",
        "index",
        "keep_alive",
        "method",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        connection: Connection,
        method: str,
        target: str,
        version: str,
        headers: list[Header],
        index: dict[bytes, bytes],
        keep_alive: bool,
    ) -> None:
        self.connection = connection
        self.method = method
        self.target = target  # exactly as sent: path and query
        self.version = version  # "1.1" or "1.0"
        self.headers = headers
        self.index = index  # lower-case name -> first value
        self.keep_alive = keep_alive
        self.content_length: int | None = None
        self.chunked = False
        self.body: Body | None = None
        self.expect_continue = False
        self.continue_sent = False
        self.upgrade = False

    def header(self, name: bytes) -> bytes | None:
        """The first value of the header `name` (lower-case), or None."""
        return self.index.get(name)

    def header_text(self, name: bytes) -> str | None:
        value = self.index.get(name)
        return None if value is None else value.decode("latin-1")

    def header_values(self, name: bytes) -> list[bytes]:
        """Every value of the header `name` (lower-case), in order."""
        return [value for lowered, _, value in self.headers if lowered == name]

    @property
    def peer(self) -> str:
        return self.connection.peer

    def send_continue(self) -> None:
        """Tell a client waiting on `Expect: 100-continue` to send its body (once)."""
        if self.expect_continue and not self.continue_sent:
            self.continue_sent = True
            self.connection.write_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
