"""A keep-alive HTTPS client over asyncio streams that shows what TLS it got."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.tls.certs import serial_of
from tests.support import LOOPBACK, RawResponse, parse_responses

WAIT = 20.0


@dataclass
class TlsClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    host: str

    @classmethod
    async def connect(cls, port: int, context: ssl.SSLContext, host: str) -> TlsClient:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(LOOPBACK, port, ssl=context, server_hostname=host), WAIT
        )
        return cls(reader, writer, host)

    @property
    def ssl_object(self) -> ssl.SSLObject:
        found = self.writer.get_extra_info("ssl_object")
        assert isinstance(found, ssl.SSLObject)
        return found

    @property
    def serial(self) -> int:
        return serial_of(self.ssl_object)

    async def get(self, path: str, headers: str = "") -> RawResponse:
        """One request on this connection (kept alive)."""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{headers}\r\n".encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT)
        (partial,) = parse_responses(head) or [None]
        assert partial is not None, head
        length = int(partial.header("Content-Length") or 0)
        body = await asyncio.wait_for(self.reader.readexactly(length), WAIT)
        (response,) = parse_responses(head + body)
        return response

    async def close(self) -> None:
        self.writer.close()


async def https_get(
    port: int, context: ssl.SSLContext, host: str, path: str, headers: str = ""
) -> tuple[RawResponse, int]:
    """One request on a connection of its own; the answer and the certificate's serial."""
    client = await TlsClient.connect(port, context, host)
    try:
        return await client.get(path, headers), client.serial
    finally:
        await client.close()


async def metric(port: int, context: ssl.SSLContext, name: str, **labels: str) -> float:
    """A sample of /metrics, read over HTTPS as a.test (0 when never recorded)."""
    response, _ = await https_get(port, context, "a.test", "/metrics")
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
