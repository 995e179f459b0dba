"""TLS on the listener, with real certificates, clients that verify them and a real upstream:
SNI, the default certificate, protocol versions, ALPN, resumption, plain HTTP on the TLS port,
HSTS and X-Forwarded-Proto, websockets over TLS, and the redirect listener (docs/tls.md)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings

import pytest
from aiohttp import ClientSession, TCPConnector, WSMsgType, web

from tests.gateway.tls.certs import Authority
from tests.gateway.tls.client import TlsClient, https_get, metric
from tests.gateway.tls.conftest import StartTls
from tests.support import LOOPBACK, Upstream, raw_request, routes, upstream_server

ECHO = "{name: echo, path: /echo, upstream: echo, auth: none}"
FAILURES = "gateway_tls_handshake_failures_total"


@pytest.fixture
async def upstream() -> Upstream:  # type: ignore[misc]
    async with upstream_server() as server:
        yield server


def echo_routes(upstream: Upstream) -> str:
    return routes({"echo": [upstream.url]}, ECHO)


async def test_each_name_gets_its_own_certificate(
    start_tls: StartTls, upstream: Upstream, authority: Authority
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test", "b.test", "default")) as gw:
        serials = {}
        for name in ("a.test", "b.test"):
            # The client verifies the chain and that the certificate names `name`.
            client = await TlsClient.connect(gw.port, authority.client(), name)
            serials[name] = client.serial
            assert client.ssl_object.version() in ("TLSv1.2", "TLSv1.3")
            response = await client.get("/echo/x")
            assert response.status == 200
            await client.close()
        assert serials["a.test"] != serials["b.test"]


async def test_an_unknown_name_gets_the_default_certificate(
    start_tls: StartTls, upstream: Upstream, authority: Authority
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test", "default")) as gw:
        # The default certificate is issued for "localhost": this client checks the chain
        # only (one verifying names would refuse it for c.test, rightly).
        context = authority.client()
        context.check_hostname = False
        response, served = await https_get(gw.port, context, "c.test", "/echo")
        assert response.status == 200
        _, default = await https_get(gw.port, authority.client(), "localhost", "/echo")
        assert served == default


@pytest.mark.parametrize(
    ("server_name", "alert"),
    [
        pytest.param("c.test", "TLSV1_UNRECOGNIZED_NAME", id="a name nobody has"),
        pytest.param(None, "SSLV3_ALERT_HANDSHAKE_FAILURE", id="no SNI"),
    ],
)
async def test_without_a_default_an_unknown_name_gets_an_alert(
    start_tls: StartTls,
    upstream: Upstream,
    authority: Authority,
    server_name: str | None,
    alert: str,
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test",)) as gw:
        context = authority.client()
        context.check_hostname = False
        with pytest.raises(ssl.SSLError) as refused:
            await asyncio.wait_for(
                asyncio.open_connection(
                    LOOPBACK, gw.port, ssl=context, server_hostname=server_name or ""
                ),
                20,
            )
        assert refused.value.reason == alert
        failures = await metric(gw.port, authority.client(), FAILURES, reason="unknown_server_name")
        assert failures == 1
        # The names it has are served.
        answer, _ = await https_get(gw.port, authority.client(), "a.test", "/echo")
        assert answer.status == 200


async def test_handshake_failures_are_counted_by_reason(
    start_tls: StartTls, upstream: Upstream, authority: Authority
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test",)) as gw:
        context = authority.client()
        context.check_hostname = False
        with pytest.raises(ssl.SSLError):
            await https_get(gw.port, context, "nobody.test", "/echo")
        await raw_request(gw.port, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        ok = authority.client()
        assert await metric(gw.port, ok, FAILURES, reason="unknown_server_name") == 1
        assert await metric(gw.port, ok, FAILURES, reason="plain_http") == 1


def _tls_1_1_client() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is: that is the point
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    # OpenSSL 3 offers TLS 1.1 only at security level 0.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


async def test_tls_1_1_is_refused_and_1_2_accepted(
    start_tls: StartTls, upstream: Upstream, authority: Authority
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test",)) as gw:
        assert gw.worker.certificates is not None
        assert gw.worker.certificates.context.minimum_version == ssl.TLSVersion.TLSv1_2
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await https_get(gw.port, _tls_1_1_client(), "a.test", "/echo")
        ok = authority.client()
        assert await metric(gw.port, ok, FAILURES, reason="protocol_version") == 1

        tls_1_2 = authority.client(maximum_version=ssl.TLSVersion.TLSv1_2)
        client = await TlsClient.connect(gw.port, tls_1_2, "a.test")
        assert client.ssl_object.version() == "TLSv1.2"
        # Mozilla intermediate: an ECDHE suite with AEAD.
        name, _, _ = client.ssl_object.cipher()  # type: ignore[misc]
        assert name.startswith("ECDHE-")
        assert "GCM" in name or "CHACHA20" in name
        assert (await client.get("/echo")).status == 200
        await client.close()


async def test_alpn_and_resumption(
    start_tls: StartTls, upstream: Upstream, authority: Authority
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test",)) as gw:

        def two_connections() -> tuple[str | None, bool, bool]:
            context = authority.client(maximum_version=ssl.TLSVersion.TLSv1_2)
            context.set_alpn_protocols(["h2", "http/1.1"])
            with (
                socket.create_connection((LOOPBACK, gw.port)) as raw,
                context.wrap_socket(raw, server_hostname="a.test") as first,
            ):
                alpn = first.selected_alpn_protocol()
                session = first.session
                first_reused = first.session_reused
            with (
                socket.create_connection((LOOPBACK, gw.port)) as raw,
                context.wrap_socket(raw, server_hostname="a.test", session=session) as second,
            ):
                return alpn, first_reused, second.session_reused

        alpn, first_reused, second_reused = await asyncio.to_thread(two_connections)
        assert alpn == "http/1.1"  # never h2: the gateway speaks HTTP/1.1
        assert (first_reused, second_reused) == (False, True)


async def test_plain_http_on_the_tls_port_gets_400(start_tls: StartTls, upstream: Upstream) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test",)) as gw:
        response = await raw_request(
            gw.port, b"GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n", timeout=20
        )
        assert response.status == 400
        assert response.header("Content-Type") == "application/problem+json"
        assert response.json()["error"] == "invalid_request"
        assert "https" in response.json()["detail"]


async def test_upstream_told_https_and_client_told_hsts(
    start_tls: StartTls, upstream: Upstream, authority: Authority
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test",), hsts_max_age=31536000) as gw:
        response, _ = await https_get(gw.port, authority.client(), "a.test", "/echo")
        assert response.status == 200
        assert response.header("Strict-Transport-Security") == "max-age=31536000"
        seen = {name.lower(): value for name, value in upstream.seen[-1]["headers"]}
        assert seen["x-forwarded-proto"] == "https"
        # A refusal of the gateway's own carries it too.
        missing, _ = await https_get(gw.port, authority.client(), "a.test", "/nowhere")
        assert missing.status == 404
        assert missing.header("Strict-Transport-Security") == "max-age=31536000"


async def test_no_hsts_unless_configured(
    start_tls: StartTls, upstream: Upstream, authority: Authority
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test",)) as gw:
        response, _ = await https_get(gw.port, authority.client(), "a.test", "/echo")
        assert response.header("Strict-Transport-Security") is None


@pytest.mark.parametrize(
    ("request_head", "location"),
    [
        pytest.param(
            b"GET /echo/a?b=1&c=%20 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            "https://a.test:{port}/echo/a?b=1&c=%20",
            id="path and query kept",
        ),
        pytest.param(
            b"POST /login HTTP/1.1\r\nHost: A.Test:80\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n",
            "https://a.test:{port}/login",
            id="the port asked for replaced",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
            "https://[::1]:{port}/",
            id="IPv6 literal",
        ),
    ],
)
async def test_redirect_listener(
    start_tls: StartTls, upstream: Upstream, request_head: bytes, location: str
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test",), redirect=True) as gw:
        response = await raw_request(gw.redirect_port, request_head, timeout=20)
        assert response.status == 308
        assert response.header("Location") == location.format(port=gw.port)


@pytest.mark.parametrize(
    "host",
    [b"evil.test/x", b"", b"a.test:80@evil.test", b"a test"],
    ids=["a path in Host", "empty Host", "userinfo", "a space"],
)
async def test_redirect_listener_refuses_a_bad_host(
    start_tls: StartTls, upstream: Upstream, host: bytes
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test",), redirect=True) as gw:
        response = await raw_request(
            gw.redirect_port,
            b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n",
            timeout=20,
        )
        assert response.status == 400
        assert response.header("Location") is None


async def test_websocket_over_tls(start_tls: StartTls, authority: Authority) -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    table = routes(
        {"sockets": [f"http://{LOOPBACK}:{port}"]},
        "{name: open, path: /open, upstream: sockets, auth: none, websocket: true,"
        " strip_prefix: true}",
    )
    try:
        async with start_tls(table, names=("a.test",)) as gw:
            # aiohttp connects to 127.0.0.1 but verifies (and sends SNI for) a.test.
            connector = TCPConnector(
                resolver=_StaticResolver({"a.test": LOOPBACK}),  # type: ignore[arg-type]
                ssl=authority.client(),
            )
            async with (
                ClientSession(connector=connector) as session,
                session.ws_connect(f"wss://a.test:{gw.port}/open/ws") as ws,
            ):
                await ws.send_str("hello")
                message = await ws.receive(timeout=20)
                assert message.data == "echo:hello"
    finally:
        await runner.cleanup()


class _StaticResolver:
    """Resolves the test's host names to loopback (traffic stays on 127.0.0.1)."""

    def __init__(self, hosts: dict[str, str]) -> None:
        self.hosts = hosts

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[dict[str, object]]:
        return [
            {
                "hostname": host,
                "host": self.hosts[host],
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01", id="half a ClientHello"),
    ],
)
async def test_a_silent_or_stalled_client_is_closed_and_counted(
    start_tls: StartTls, upstream: Upstream, authority: Authority, sent: bytes
) -> None:
    async with start_tls(echo_routes(upstream), names=("a.test",), header_timeout=0.5) as gw:
        reader, writer = await asyncio.open_connection(LOOPBACK, gw.port)
        writer.write(sent)
        # The gateway closes it (no timing asserted: only that it does, within the test's time).
        assert await asyncio.wait_for(reader.read(), 20) == b""
        writer.close()
        assert await metric(gw.port, authority.client(), FAILURES, reason="timeout") == 1
