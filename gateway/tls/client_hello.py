"""The server name a TLS ClientHello asks for, read from its first bytes (RFC 8446 section
4.1.2, RFC 6066 section 3), before any handshake: so that a name no certificate is for can be
answered with a real `unrecognized_name` alert (the event loop drops the alert OpenSSL writes
when a handshake fails, and the client would see only a closed connection)."""

from __future__ import annotations

HANDSHAKE = 0x16
CLIENT_HELLO = 0x01
SERVER_NAME_EXTENSION = 0x0000
HOST_NAME = 0x00

# Fatal alerts, written as a TLS 1.2 record (a TLS 1.3 client takes it before the handshake).
UNRECOGNIZED_NAME_ALERT = bytes((0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112))
HANDSHAKE_FAILURE_ALERT = bytes((0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40))


class Incomplete(Exception):
    """The bytes do not hold a whole, well-formed ClientHello (let OpenSSL judge it)."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        end = self.at + size
        if end > len(self.data):
            raise Incomplete
        chunk = self.data[self.at : end]
        self.at = end
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.number(length_size))


def server_name(data: bytes) -> str | None:
    """The host name asked for; None when the client sent none. Raises Incomplete."""
    record = _Reader(data)
    if record.number(1) != HANDSHAKE:
        raise Incomplete
    record.take(2)  # legacy record version
    fragment = record.vector(2)
    hello = _Reader(fragment)
    if hello.number(1) != CLIENT_HELLO:
        raise Incomplete
    body = _Reader(hello.take(hello.number(3)))  # one record holds it, as clients send it
    body.take(2 + 32)  # legacy version, random
    body.vector(1)  # session id
    body.vector(2)  # cipher suites
    body.vector(1)  # compression methods
    if body.at == len(body.data):
        return None  # no extensions at all
    extensions = _Reader(body.vector(2))
    while extensions.at < len(extensions.data):
        kind = extensions.number(2)
        content = extensions.vector(2)
        if kind != SERVER_NAME_EXTENSION:
            continue
        names = _Reader(_Reader(content).vector(2))
        while names.at < len(names.data):
            name_type = names.number(1)
            name = names.vector(2)
            if name_type == HOST_NAME:
                try:
                    return name.decode("ascii").lower()
                except UnicodeDecodeError:
                    raise Incomplete from None
        return None
    return None
