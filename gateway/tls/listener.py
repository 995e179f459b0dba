"""The TLS listener: accepts, tells a TLS client from a plain-HTTP one by its first byte, and
shakes hands; what fails is counted by reason, never logged with a stack trace.

Why an accept loop of its own rather than `loop.create_server(ssl=...)`: there, a plain-HTTP
request to the TLS port ends in a failed handshake the server never hears of, and the client
gets a closed connection. Here the first byte is peeked before any handshake: a TLS record
starts with 22 (handshake), an HTTP request with a letter, and the latter is answered 400 in
plain HTTP, as nginx answers "The plain HTTP request was sent to HTTPS port". The handshake
itself is the event loop's (uvloop's, Cython over OpenSSL), and a connection it completes is
an ordinary HttpConnection: the HTTP layer does not know it runs over TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

from auth_core import headers as h
from gateway.http.response import CONNECTION_CLOSE
from gateway.problem import PROBLEM_JSON, SERVER_NAME, problem_body
from gateway.tls.certificates import Certificates
from gateway.tls.client_hello import (
    HANDSHAKE_FAILURE_ALERT,
    UNRECOGNIZED_NAME_ALERT,
    Incomplete,
    server_name,
)

log = logging.getLogger("gateway.tls")

TLS_HANDSHAKE_RECORD = 0x16  # RFC 8446 section 5.1: ContentType handshake
ACCEPT_BATCH = 64  # connections accepted a wake-up, so that one busy listener cannot starve
HELLO_PEEK = 16384  # the largest TLS record: a ClientHello that fits is read whole

_PLAIN_BODY = problem_body(
    400,
    "invalid_request",
    "this port speaks HTTPS: the request was sent as plain HTTP (use https://)",
    None,
)
PLAIN_HTTP_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\n"
    + h.W_CONTENT_TYPE
    + b": "
    + PROBLEM_JSON.encode()
    + b"\r\n"
    + h.W_CONTENT_LENGTH
    + b": %d\r\n" % len(_PLAIN_BODY)
    + h.W_SERVER
    + b": "
    + SERVER_NAME.encode()
    + b"\r\n"
    + CONNECTION_CLOSE
    + b"\r\n"
    + _PLAIN_BODY
)

# OpenSSL's reasons, folded into the few a dashboard can act on (the label's values are bounded).
_REASONS = {
    "UNSUPPORTED_PROTOCOL": "protocol_version",
    "WRONG_VERSION_NUMBER": "protocol_version",
    "UNKNOWN_PROTOCOL": "protocol_version",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol_version",
    "NO_SHARED_CIPHER": "no_shared_cipher",
    "NO_CIPHERS_AVAILABLE": "no_shared_cipher",
    "CALLBACK_FAILED": "unknown_server_name",
    "TLSV1_ALERT_UNRECOGNIZED_NAME": "unknown_server_name",
    "TLSV1_ALERT_UNKNOWN_CA": "certificate_refused",
    "SSLV3_ALERT_BAD_CERTIFICATE": "certificate_refused",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "certificate_refused",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "certificate_refused",
    "NO_APPLICATION_PROTOCOL": "no_application_protocol",
}


def failure_reason(exc: BaseException) -> str:
    """The `reason` label of a failed handshake."""
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "closed"
    if isinstance(exc, ssl.SSLError):
        return _REASONS.get(exc.reason or "", "other")
    if isinstance(exc, TimeoutError | ConnectionAbortedError):
        # asyncio and uvloop abort a handshake past its timeout with ConnectionAbortedError.
        return "timeout"
    if isinstance(exc, OSError):
        return "closed"
    return "other"


class TlsListener:
    """Serves `factory`'s protocol over TLS on the listening socket `sock`."""

    def __init__(
        self,
        sock: socket.socket,
        factory: Callable[[], asyncio.Protocol],
        certificates: Certificates,
        loop: asyncio.AbstractEventLoop,
        *,
        handshake_timeout: float,
        on_failure: Callable[[str], None],
    ) -> None:
        self.sock = sock
        self.factory = factory
        self.certificates = certificates
        self.context = certificates.context
        self.loop = loop
        self.handshake_timeout = handshake_timeout
        self.on_failure = on_failure
        # Accepted, their first byte not arrived yet: closed when it does not in time.
        self._silent: dict[socket.socket, asyncio.TimerHandle] = {}
        self._handshakes: set[asyncio.Task[None]] = set()
        self._listening = False

    def start(self) -> None:
        # Linux: accept() only once the client has sent something (its ClientHello, usually
        # in full), so that the first byte is there to read without a wait of its own.
        with contextlib.suppress(AttributeError, OSError):
            seconds = max(1, int(self.handshake_timeout))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, seconds)
        self.loop.add_reader(self.sock.fileno(), self._accept)
        self._listening = True

    def close(self) -> None:
        """Stop accepting; connections that have not begun a handshake are dropped."""
        if self._listening:
            self._listening = False
            self.loop.remove_reader(self.sock.fileno())
        for conn in list(self._silent):
            self._drop(conn)
        for task in self._handshakes:
            task.cancel()

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # another worker took it, or none was waiting
            except OSError as exc:
                # Out of file descriptors and the like: the next wake-up tries again.
                log.warning("cannot accept a connection: %s", exc.strerror or exc)
                return
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                first = conn.recv(1, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                # Nothing yet: wait for it, as long as a handshake may take.
                self._silent[conn] = self.loop.call_later(
                    self.handshake_timeout, self._timed_out, conn
                )
                self.loop.add_reader(conn.fileno(), self._first_byte, conn)
                continue
            except OSError:
                conn.close()
                continue
            self._dispatch(conn, first)

    def _drop(self, conn: socket.socket) -> None:
        timer = self._silent.pop(conn, None)
        if timer is not None:
            timer.cancel()
        with contextlib.suppress(OSError, ValueError):
            self.loop.remove_reader(conn.fileno())
        conn.close()

    def _timed_out(self, conn: socket.socket) -> None:
        self._silent.pop(conn, None)
        self._drop(conn)
        self.on_failure("timeout")

    def _first_byte(self, conn: socket.socket) -> None:
        try:
            first = conn.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return  # a spurious wake-up: still waiting
        except OSError:
            self._drop(conn)
            return
        timer = self._silent.pop(conn)
        timer.cancel()
        self.loop.remove_reader(conn.fileno())
        self._dispatch(conn, first)

    def _dispatch(self, conn: socket.socket, first: bytes) -> None:
        if not first:
            # Connected and closed without a word: a TCP health check, not a failed handshake.
            conn.close()
        elif first[0] == TLS_HANDSHAKE_RECORD:
            if not self.certificates.has_default and self._refuse_unknown_name(conn):
                return
            task = self.loop.create_task(self._handshake(conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)
        else:
            self._answer_plain(conn)

    def _refuse_unknown_name(self, conn: socket.socket) -> bool:
        """Without a default certificate, answer a name nobody has one for with the alert
        RFC 6066 asks for (no SNI at all: handshake_failure); True when refused."""
        try:
            name = server_name(conn.recv(HELLO_PEEK, socket.MSG_PEEK))
        except (Incomplete, OSError):
            return False  # the handshake will judge it
        if self.certificates.serves(name):
            return False
        self.on_failure("unknown_server_name")
        with contextlib.suppress(OSError):
            conn.recv(HELLO_PEEK)
            conn.send(UNRECOGNIZED_NAME_ALERT if name else HANDSHAKE_FAILURE_ALERT)
        conn.close()
        return True

    def _answer_plain(self, conn: socket.socket) -> None:
        self.on_failure("plain_http")
        try:
            # Read what came (the request head, usually all of it) so that closing does not
            # reset the connection before the client has read the answer.
            conn.recv(65536)
            conn.send(PLAIN_HTTP_ANSWER)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()

    async def _handshake(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(
                self.factory,
                conn,
                ssl=self.context,
                ssl_handshake_timeout=self.handshake_timeout,
            )
        except Exception as exc:
            # The transport owned the socket and has closed it (uvloop detaches it): closing
            # it here could close a descriptor number already given to someone else.
            self.on_failure(failure_reason(exc))
            log.debug("TLS handshake failed: %s", exc)
