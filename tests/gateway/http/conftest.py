"""Gateways for the protocol tests: one with the default limits, one with short timeouts, and
a raw upstream that records every byte it is sent (to prove a refused request reached nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import (
    LOOPBACK,
    RunningGateway,
    Upstream,
    quiet_settings,
    routes,
    running_gateway,
    tcp_server,
)

ECHO_ROUTE = "{name: echo, path: /echo, upstream: echo, auth: none}"

# Short enough for a test to wait out (the server sweeps once a second), long enough that a
# loaded machine does not trip them between the writes of a test that means to be quick.
SHORT_TIMEOUTS = quiet_settings(
    header_timeout=1.0,
    keepalive_timeout=1.0,
    body_timeout=1.0,
)


@dataclass
class RecordingUpstream:
    """A plain TCP server that keeps every byte it receives and answers each head with 200."""

    port: int
    received: bytearray = field(default_factory=bytearray)
    connections: int = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


@pytest.fixture
async def recorder() -> AsyncIterator[RecordingUpstream]:
    recording = RecordingUpstream(0)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        recording.connections += 1
        buffered = b""
        try:
            while chunk := await reader.read(65536):
                recording.received += chunk
                buffered += chunk
                while b"\r\n\r\n" in buffered:
                    head, _, buffered = buffered.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(buffered) < length:
                        more = await reader.read(65536)
                        if not more:
                            return
                        recording.received += more
                        buffered += more
                    buffered = buffered[length:]
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except ConnectionError:
            pass
        finally:
            writer.close()

    async with tcp_server(serve) as recording.port:
        yield recording


@pytest.fixture
async def gateway(upstream: Upstream, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """The gateway with default limits, `/echo` forwarded to the echo upstream."""
    async with running_gateway(routes({"echo": [upstream.url]}, ECHO_ROUTE), tmp_path) as gw:
        yield gw


@pytest.fixture
async def impatient_gateway(upstream: Upstream, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """The gateway with one-second header, keep-alive and body timeouts."""
    table = routes({"echo": [upstream.url]}, ECHO_ROUTE)
    async with running_gateway(table, tmp_path, SHORT_TIMEOUTS) as gw:
        yield gw


@pytest.fixture
async def guarded_gateway(
    recorder: RecordingUpstream, tmp_path: Path
) -> AsyncIterator[tuple[RunningGateway, RecordingUpstream]]:
    """The gateway with `/echo` forwarded to the recording upstream."""
    async with running_gateway(routes({"echo": [recorder.url]}, ECHO_ROUTE), tmp_path) as gw:
        yield gw, recorder
