"""Real aiohttp upstreams speaking TLS with certificates of tests/tls_authority.py; each records
the SNI name every handshake carried and the client certificates it was shown."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support import LOOPBACK, SEEN, echo_handler
from tests.tls_authority import Issued


def server_context(issued: Issued, *, client_ca: Path | None = None) -> ssl.SSLContext:
    """An upstream's context serving `issued`; with `client_ca`, a client certificate signed
    by it is required (mutual TLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.cert, issued.key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


@dataclass
class TlsUpstream:
    """A real HTTPS upstream on loopback, recording its requests and handshakes."""

    port: int
    seen: list[dict[str, Any]]
    server_names: list[str | None] = field(default_factory=list)  # SNI, one per handshake
    client_subjects: list[str] = field(default_factory=list)  # common names of client certs

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def tls_upstream(
    context: ssl.SSLContext, serve: Handler = echo_handler
) -> AsyncIterator[TlsUpstream]:
    """An aiohttp server on loopback speaking TLS with `context`, every request to `serve`."""
    app = web.Application()
    app[SEEN] = []
    upstream = TlsUpstream(0, app[SEEN])

    def sni(connection: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        upstream.server_names.append(name)

    context.sni_callback = sni  # type: ignore[assignment]

    @web.middleware
    async def note_client(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        if peer:
            upstream.client_subjects.extend(
                value for rdn in peer["subject"] for key, value in rdn if key == "commonName"
            )
        return await handler(request)

    app.middlewares.append(note_client)
    app.router.add_route("*", "/{tail:.*}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0, ssl_context=context)
    await site.start()
    upstream.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield upstream
    finally:
        await runner.cleanup()
