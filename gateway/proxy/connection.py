"""A keep-alive HTTP/1.1 connection to one upstream target.

An asyncio Protocol fed straight from the socket, with httptools' C parser (llhttp) reading
responses: no StreamReader, no per-chunk task, no header dict until the forwarder asks for one.
This is the hot path's largest cost in aiohttp's ClientSession, which measured at less than half
the speed (see bench/README.md).

One exchange at a time: `begin`, `send`/`drain` the request, `head_pending`, then `read` the
body until b"" (or take it whole when `complete`), then `finish` says whether it may be reused.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Final, cast

import httptools

from auth_core import headers as h
from gateway.proxy.headers import (
    CONNECTION_OPTIONS,
    RESPONSE_DROP,
    SERVER_HEADER,
    UNDERSCORE,
    connection_tokens,
    disguised_response_header,
)

HIGH_WATER: Final = 256 * 1024  # stop reading the upstream when this much body waits for the client
LOW_WATER: Final = 64 * 1024
TICK: Final = 0.1  # how often deadlines are checked: the precision of upstream timeouts


class UpstreamError(Exception):
    """An exchange with the upstream failed; `kind` labels the failure in metrics."""

    # A ClassVar, said so: compiled with mypyc, a plain class attribute of an Exception
    # subclass is lost and every failure raised AttributeError (bench/README.md, 2026-12-03).
    kind: ClassVar[str] = "error"

    def __init__(self, message: str, *, received: bool = False) -> None:
        super().__init__(message)
        self.received = received  # some of a response arrived: never retry then


class ConnectFailed(UpstreamError):
    kind = "connect"


class ConnectTimedOut(UpstreamError):
    kind = "connect_timeout"


class ResponseTimedOut(UpstreamError):
    kind = "timeout"


class ConnectionClosed(UpstreamError):
    kind = "closed"


class BadResponse(UpstreamError):
    kind = "protocol"


IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


def stale(method: str, error: UpstreamError) -> bool:
    """A kept-alive connection found closed before any answer, for a request that can be sent
    again (RFC 9110 section 9.2.2): retried on a new connection, not held against the target."""
    return method in IDEMPOTENT and not error.received and not isinstance(error, ResponseTimedOut)


class Watchdog:
    """Times out waiting connections from one periodic check, instead of a timer handle per
    wait: a request then costs two set operations rather than creating and cancelling a
    TimerHandle (about 2.4 us each time on the bench machine)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: set[UpstreamConnection] = set()

    async def run(self) -> None:
        """Check deadlines every TICK seconds, forever (cancel to stop)."""
        while True:
            await asyncio.sleep(TICK)
            if self.waiting:
                now = self.loop.time()
                for conn in [c for c in self.waiting if c.deadline <= now]:
                    conn.time_out()


class UpstreamConnection(asyncio.Protocol):
    """One TCP (or TLS) connection to a target, and the response currently on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, watchdog: Watchdog) -> None:
        self.loop = loop
        self.watchdog = watchdog
        self.deadline = 0.0
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.uses = 0  # responses completed; > 0 means a reused connection
        self.idle_since = 0.0
        self.active = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []  # for the client: hop-by-hop ones gone
        self.dated = False  # the upstream sent a Date
        self._named = False  # ... and a Server
        self._listed: set[bytes] | None = None  # names its Connection header lists
        self._length: bytes | None = None
        self.content_length: int | None = None
        self.chunked = False
        self.head_received = False
        self.complete = False
        self.keep_alive = False
        self.received_any = False
        self._head_only = False
        self._until_close = False
        self._interim = False
        self._timeout = 30.0
        self._waiter: asyncio.Future[None] | None = None
        self.error: UpstreamError | None = None  # why the exchange failed, once it has
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._reading_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._writing_paused = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if not self.active:
            # Bytes nobody asked for: the stream is out of step; never reuse it.
            self.close()
            return
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadResponse("upstream switched protocols", received=True))
        except httptools.HttpParserError:
            self._fail(BadResponse("upstream sent a malformed response", received=True))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self._release_drain()
        if not self.active or self.complete:
            return
        if self.head_received and self._until_close and exc is None:
            # A body delimited by the close of the connection (RFC 9112 section 6.3).
            self.complete = True
            self._wake()
            return
        self._fail(
            ConnectionClosed(
                "upstream closed the connection before the response was complete",
                received=self.received_any,
            )
        )

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._release_drain()

    def _release_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.headers = []
        self.dated = False
        self._named = False
        self._listed = None
        self._length = None
        self.chunked = False

    def on_header(self, name: bytes, value: bytes) -> None:
        # The response headers are filtered for the client here, as they are parsed: one pass
        # (proxy/headers.py says what goes and why).
        lowered = name.lower()
        if lowered in RESPONSE_DROP:
            if lowered == h.B_CONTENT_LENGTH:
                self._length = value
            elif lowered == h.B_TRANSFER_ENCODING:
                self.chunked = b"chunked" in value.lower()
            elif lowered == h.B_CONNECTION and value.lower() not in CONNECTION_OPTIONS:
                tokens = connection_tokens(value) - CONNECTION_OPTIONS
                if tokens:
                    self._listed = tokens if self._listed is None else self._listed | tokens
            return
        if UNDERSCORE in lowered and disguised_response_header(lowered):
            return  # `Transfer_Encoding`: framing in disguise (proxy/headers.py)
        if lowered == h.B_DATE:
            self.dated = True
        elif lowered == h.B_SERVER:
            self._named = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # Interim responses (100 Continue, 103 Early Hints) are not forwarded.
            self._interim = True
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        if self._listed is not None:
            listed = self._listed
            self.headers = [
                pair for pair in self.headers if pair[0].lower().replace(b"_", b"-") not in listed
            ]
        if not self._named:
            self.headers.append(SERVER_HEADER)
        content_length: int | None = None
        if self._length is not None and not self.chunked:
            try:
                content_length = int(self._length)
            except ValueError:
                content_length = None
        self.content_length = content_length
        self.head_received = True
        self._release_drain()  # a request body still being sent stops here (early answer)
        if self._head_only or status in (204, 304):
            self.complete = True
        else:
            self._until_close = not self.chunked and content_length is None
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self._wake()

    # -- one exchange ---------------------------------------------------------------------------

    def begin(self, *, head_only: bool, timeout: float) -> None:
        """Start an exchange; `head_only` for HEAD, whose response has no body."""
        self.active = True
        self.status = 0
        self.headers = []
        self.content_length = None
        self.chunked = False
        self.head_received = False
        self.complete = False
        self.keep_alive = False
        self.received_any = False
        self._head_only = head_only
        self._until_close = False
        self._interim = False
        self._timeout = timeout
        self.error = None
        self._chunks = []
        self._buffered = 0

    def send(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ConnectionClosed("upstream connection closed while sending")
        transport.write(data)

    async def drain(self) -> None:
        """Wait while the upstream is slow to take the request body (flow control)."""
        self._raise_if_failed()
        if not self._writing_paused or self.head_received or self.closed:
            return
        # An upstream that stops reading (its window closed) is as stuck as one that does not
        # answer: the same timeout ends the wait, from the Watchdog, and fails the exchange.
        self._drain_waiter = self.loop.create_future()
        self.deadline = self.loop.time() + self._timeout
        waiting = self.watchdog.waiting
        waiting.add(self)
        try:
            await self._drain_waiter
        finally:
            self._drain_waiter = None
            waiting.discard(self)
        self._raise_if_failed()

    def head_pending(self) -> asyncio.Future[None] | None:
        """None once the status line and headers are in; until then a future that is done
        when something arrives (the forwarder awaits it, then asks again), at most the
        timeout later. Raises the exchange's failure. Not a coroutine: this is every
        request's wait, and a future awaited directly is one coroutine less each time."""
        if self.error is not None:
            raise self.error
        if self.head_received:
            return None
        waiter = self._waiter = self.loop.create_future()
        self.deadline = self.loop.time() + self._timeout
        self.watchdog.waiting.add(self)
        return waiter

    async def whole_body(self) -> None:
        """Wait until the response is complete (its body is then `take_body`'s)."""
        while not self.complete:
            await self._wait()

    async def read(self) -> bytes:
        """The next piece of the body; b"" once it is complete."""
        while not self._chunks:
            if self.complete:
                return b""
            await self._wait()
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._buffered = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def take_body(self) -> bytes:
        """The whole body of a complete response."""
        chunks = self._chunks
        self._chunks = []
        self._buffered = 0
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def finish(self) -> bool:
        """End the exchange; True when the connection can serve another one."""
        self.active = False
        reusable = (
            self.complete
            and self.keep_alive
            and not self.closed
            and self.error is None
            and not self._until_close
        )
        if reusable and self._head_only:
            # llhttp cannot be told a response answered HEAD; a fresh parser will not wait
            # for the body that a Content-Length announced.
            self.parser = httptools.HttpResponseParser(self)
        if reusable:
            self.uses += 1
        return reusable

    def close(self) -> None:
        self.active = False
        self.closed = True
        self._stop_waiting()
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def abort(self) -> None:
        """Drop the connection now (the client went away, or the exchange failed)."""
        self.active = False
        self.closed = True
        self._stop_waiting()
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    # -- internals ------------------------------------------------------------------------------

    async def _wait(self) -> None:
        self._raise_if_failed()
        waiter = self._waiter = self.loop.create_future()
        self.deadline = self.loop.time() + self._timeout
        waiting = self.watchdog.waiting
        waiting.add(self)
        try:
            await waiter
        finally:
            self._waiter = None
            waiting.discard(self)
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        # A method, not `if self.error is not None` written out before and after an await: mypy
        # narrows `self.error` to None after the first check and keeps that across the await,
        # during which a callback may set it; compiled with mypyc, the second check then raised
        # TypeError ("None object expected") instead of the failure.
        if self.error is not None:
            raise self.error

    def _wake(self) -> None:
        # The waiter's bookkeeping is undone here, not after the await: head_pending's waits
        # have no coroutine of their own to do it in.
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            self.watchdog.waiting.discard(self)
            if not waiter.done():
                waiter.set_result(None)

    def _stop_waiting(self) -> None:
        # A wait ended by cancellation (head_pending's future cancelled with the task) leaves
        # the connection in the Watchdog's set: the connection is dropped, so is that entry.
        if self._waiter is not None:
            self._waiter = None
            self.watchdog.waiting.discard(self)

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        self._wake()
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        self.closed = True

    def time_out(self) -> None:
        """The deadline passed with nothing from the upstream, or nothing of the request body
        taken by it (called by the Watchdog)."""
        self.watchdog.waiting.discard(self)
        what = (
            "took no more of the request body"
            if self._drain_waiter is not None
            else "did not answer"
        )
        self._fail(
            ResponseTimedOut(
                f"the upstream {what} within {self._timeout:g}s", received=self.received_any
            )
        )

    def __repr__(self) -> str:
        peer: Any = self.transport.get_extra_info("peername") if self.transport else None
        return f"<UpstreamConnection {peer} uses={self.uses} closed={self.closed}>"
