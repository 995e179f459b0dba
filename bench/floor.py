"""The floor of the design: the least a Python proxy on uvloop and httptools can do per request.

No routing, auth, ids, signing, metrics, logs, health, retries, streaming or limits: a client
protocol and an upstream protocol, both parsed by httptools, forwarding bodiless requests on
kept-alive upstream connections, the answer relayed from the upstream's callback. What the
gateway does per request can only cost more than this; `bench/run --floor` loads it beside
nginx and the gateway in one run (bench/README.md).

    .venv/bin/python bench/floor.py --port 8080 --upstream 127.0.0.1:8081
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque

import httptools
import uvloop


class Upstream(asyncio.Protocol):
    def __init__(self, pool: deque[Upstream]) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: Client | None = None
        self.headers: list[bytes] = []
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.headers = []
        self.body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in (b"connection", b"keep-alive", b"content-length"):
            self.headers.append(name + b": " + value + b"\r\n")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        self.pool.append(self)
        if client is not None and client.transport is not None:
            body = b"".join(self.body)
            client.transport.write(
                b"HTTP/1.1 %d OK\r\n%bContent-Length: %d\r\n\r\n%b"
                % (self.parser.get_status_code(), b"".join(self.headers), len(body), body)
            )


class Client(asyncio.Protocol):
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in (b"host", b"connection"):
            self.headers.append(name + b": " + value + b"\r\n")

    def on_message_complete(self) -> None:
        self.proxy.forward(self)


class Proxy:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.idle: deque[Upstream] = deque()
        self.host_line = f"Host: {host}:{port}\r\n".encode()

    def forward(self, client: Client) -> None:
        head = b"%b %b HTTP/1.1\r\n%b%b\r\n" % (
            client.parser.get_method(),
            client.url,
            self.host_line,
            b"".join(client.headers),
        )
        if self.idle:
            upstream = self.idle.pop()
            upstream.client = client
            assert upstream.transport is not None
            upstream.transport.write(head)
        else:
            asyncio.get_running_loop().create_task(self._connect(client, head))

    async def _connect(self, client: Client, head: bytes) -> None:
        loop = asyncio.get_running_loop()
        _, upstream = await loop.create_connection(
            lambda: Upstream(self.idle), self.host, self.port
        )
        upstream.client = client
        assert upstream.transport is not None
        upstream.transport.write(head)


async def serve(port: int, upstream: str) -> None:
    host, _, upstream_port = upstream.rpartition(":")
    proxy = Proxy(host, int(upstream_port))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Client(proxy), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="host:port of the upstream")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.upstream))


if __name__ == "__main__":
    main()
