"""The relay of one websocket between the client's connection and the upstream's.

Bytes are forwarded as they arrive, in both directions, while a FrameTracker a direction
follows the frames (sizes, rules, close frames). Back pressure is the transports' own: when
one side's write buffer fills, the other side stops being read until it drains, so a slow
reader slows the writer instead of filling memory. The tunnel ends when both close frames
have passed, when either connection goes, when nothing moved for the idle timeout, or when
the gateway ends it: on revocation or expiry of the credential (1008 to the client, 1001 to the
upstream) and on shutdown (1001 to both). A close frame of the gateway's own is only ever
written between frames; a side caught inside a frame is just cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import httptools

from auth_core.models import Principal
from gateway.tracing import new_id
from gateway.websocket.frames import (
    GOING_AWAY,
    FrameError,
    FrameTracker,
    close_frame,
)

if TYPE_CHECKING:
    from gateway.http.request import Connection

log = logging.getLogger("gateway")

LINGER = 5.0  # seconds a closed socket may take to hand its buffered bytes to a slow peer


class UpstreamSide(asyncio.Protocol):
    """The upstream's connection: first the handshake's answer, then the tunnel's bytes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[bytes, bytes] = {}  # lower-case name -> values joined, for checks
        self.raw_headers: list[tuple[bytes, bytes]] = []  # as sent, for a refused upgrade
        self._name = b""
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.body = b""
        self.rest = b""  # bytes after the 101's head: the first frames
        self.tunnel: Tunnel | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.from_upstream(data)
            return
        if self.head.done() and self.status == 101:
            self.rest += data
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.rest = data[upgrade.args[0] :]
            self._head_done()
        except httptools.HttpParserError as exc:
            if not self.head.done():
                self.head.set_exception(ConnectionError(f"bad answer from upstream: {exc}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        lowered = name.lower()
        if lowered in self.headers:
            self.headers[lowered] += b", " + value
        else:
            self.headers[lowered] = value

    def on_headers_complete(self) -> None:
        # A 101 ends with the upgrade (data_received); any other answer with its body.
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if len(self.body) < 1024 * 1024:
            self.body += body

    def on_message_complete(self) -> None:
        self._head_done()

    def _head_done(self) -> None:
        if not self.head.done():
            self.head.set_result(None)

    def pause_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.upstream_paused(True)

    def resume_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.upstream_paused(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.head.done():
            if self.status and self.status != 101:
                self.head.set_result(None)  # an answer whose body ran to the close
            else:
                self.head.set_exception(ConnectionError("the upstream closed the connection"))
        if self.tunnel is not None:
            self.tunnel.upstream_lost()


class Tunnel:
    """One websocket relayed between the client's connection, which it took over after the 101
    (gateway.http.request.Upgraded), and the upstream's."""

    def __init__(
        self,
        client: Connection,
        upstream: UpstreamSide,
        *,
        principal: Principal | None,
        client_ip: str,
        max_message: int,
        idle_timeout: float,
        on_end: Callable[[Tunnel], None],
    ) -> None:
        # Unguessable (gateway.tracing.new_id): it names the socket's context to services
        # (GET /api/v1/auth/internal/sockets/{id}) and in logs.
        self.id = "ws_" + new_id()
        self.client = client
        self.upstream = upstream
        self.principal = principal
        self.client_ip = client_ip
        self.connected_at = time.time()
        self.secret: str | None = None  # an API key or PAT, to check it again on revocations
        self.from_client_frames = FrameTracker(masked=True, max_message=max_message)
        self.from_upstream_frames = FrameTracker(masked=False, max_message=max_message)
        self.idle_timeout = idle_timeout
        self.last_activity = time.monotonic()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended = False
        self._on_end = on_end
        self._idle: asyncio.TimerHandle | None = None

    def start(self, client_rest: bytes) -> None:
        """Both sides are connected and the 101 was sent: relay what is already here."""
        self.upstream.tunnel = self
        self._arm_idle()
        if self.upstream.rest:
            rest, self.upstream.rest = self.upstream.rest, b""
            self.from_upstream(rest)
        if client_rest:
            self.from_client(client_rest)
        if self.upstream.lost:
            self.upstream_lost()

    # -- relaying ---------------------------------------------------------------------------

    def from_client(self, data: bytes) -> None:
        if self.ended:
            return
        self.last_activity = time.monotonic()
        try:
            self.from_client_frames.feed(data)
        except FrameError as error:
            self._broken(error, data, from_client=True)
            return
        transport = self.upstream.transport
        if transport is not None:
            transport.write(data)
        self._maybe_finished()

    def from_upstream(self, data: bytes) -> None:
        if self.ended:
            return
        self.last_activity = time.monotonic()
        try:
            self.from_upstream_frames.feed(data)
        except FrameError as error:
            self._broken(error, data, from_client=False)
            return
        transport = self.client.transport
        if transport is not None:
            transport.write(data)
        self._maybe_finished()

    def upstream_paused(self, paused: bool) -> None:
        """The upstream cannot take more now: stop reading the client (and go on later)."""
        transport = self.client.transport
        if transport is not None:
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def client_paused(self, paused: bool) -> None:
        transport = self.upstream.transport
        if transport is not None:
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _maybe_finished(self) -> None:
        if (
            self.from_client_frames.close_code is not None
            and self.from_upstream_frames.close_code is not None
        ):
            # The closing handshake is complete both ways: the TCP connections can go.
            self._finish()

    # -- ending -----------------------------------------------------------------------------

    def end(
        self,
        client_code: int,
        upstream_code: int,
        reason: str,
        *,
        client_between_frames: bool = False,
        upstream_between_frames: bool = False,
    ) -> None:
        """Close the client side with `client_code` and the upstream with `upstream_code`.
        `*_between_frames`: what was forwarded to that side is known to end between frames
        (a broken frame was held back), whatever its tracker says."""
        if self.ended:
            return
        self._close_client(client_code, reason, client_between_frames)
        self._close_upstream(upstream_code, reason, upstream_between_frames)
        self._finish()

    def _close_client(self, code: int, reason: str, between_frames: bool = False) -> None:
        """A close frame to the client, if one can go now (between frames, none sent yet)."""
        transport, frames = self.client.transport, self.from_upstream_frames
        clear = between_frames or frames.at_boundary
        if transport is not None and frames.close_code is None and clear:
            transport.write(close_frame(code, reason, masked=False))

    def _close_upstream(self, code: int, reason: str, between_frames: bool = False) -> None:
        transport, frames = self.upstream.transport, self.from_client_frames
        clear = between_frames or frames.at_boundary
        if transport is not None and frames.close_code is None and clear:
            transport.write(close_frame(code, reason, masked=True))

    def _broken(self, error: FrameError, data: bytes, *, from_client: bool) -> None:
        """A side broke the protocol: relay the good frames before the bad one, then close
        both sides (the broken direction with the error's code when it is between frames)."""
        side = "client" if from_client else "upstream"
        log.info("websocket %s: %s (%s)", self.id, error.reason, side)
        clean = error.offset >= 0
        if error.offset > 0:
            good = data[: error.offset]
            target = self.upstream.transport if from_client else self.client.transport
            if target is not None:
                target.write(good)
        if from_client:
            self.end(error.code, error.code, error.reason, upstream_between_frames=clean)
        else:
            self.end(error.code, GOING_AWAY, error.reason, client_between_frames=clean)

    def shut_down(self) -> None:
        """The gateway is stopping (HttpConnection.abort): 1001 to both sides."""
        self.end(GOING_AWAY, GOING_AWAY, "the gateway is shutting down")

    def client_lost(self) -> None:
        """The client's connection went: tell the upstream it is going away."""
        if not self.ended:
            self._close_upstream(GOING_AWAY, "client gone")
            self._finish()

    def upstream_lost(self) -> None:
        if not self.ended:
            self._close_client(GOING_AWAY, "upstream gone")
            self._finish()

    def _finish(self) -> None:
        if self.ended:
            return
        self.ended = True
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        for transport in (self.client.transport, self.upstream.transport):
            if transport is not None and not transport.is_closing():
                transport.close()  # after what is buffered has gone ...
                if transport.get_write_buffer_size():
                    # ... unless the peer does not read it: then not for long.
                    loop.call_later(LINGER, transport.abort)
        self._on_end(self)
        if not self.done.done():
            self.done.set_result(None)

    def _arm_idle(self) -> None:
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(min(self.idle_timeout, 1.0), self._check_idle)

    def _check_idle(self) -> None:
        if self.ended:
            return
        if time.monotonic() - self.last_activity >= self.idle_timeout:
            self.end(GOING_AWAY, GOING_AWAY, "idle")
            return
        self._arm_idle()

    async def wait(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self.done)
