"""The server name read from a ClientHello, as Python's own TLS client writes it."""

from __future__ import annotations

import ssl

import pytest

from gateway.tls.client_hello import Incomplete, server_name


def client_hello(name: str | None) -> bytes:
    """The first flight of a real TLS client asking for `name` (None: no SNI)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("a.test", "a.test", id="a name"),
        pytest.param("API.Example.COM", "api.example.com", id="lower-cased"),
        pytest.param(None, None, id="no SNI"),
    ],
)
def test_the_name_asked_for(name: str | None, expected: str | None) -> None:
    assert server_name(client_hello(name)) == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(client_hello("a.test")[:60], id="cut short"),
        pytest.param(b"", id="nothing"),
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", id="not TLS"),
        pytest.param(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00", id="not a ClientHello"),
    ],
)
def test_what_is_not_a_whole_client_hello(data: bytes) -> None:
    with pytest.raises(Incomplete):
        server_name(data)
