"""TLS to upstreams (docs/routes.md: `tls`), over real TLS: the certificate checked
against the system's CAs or the upstream's `ca_file`, the name against the target's host or
`server_name` (which SNI carries too), a client certificate for mutual TLS, websockets over
wss, and reloads that rebuild it all."""

from __future__ import annotations

import json
import logging
import ssl
import warnings
from pathlib import Path

import pytest
from aiohttp import ClientSession, WSMsgType, web

from tests.gateway.proxy.tls_upstream import server_context, tls_upstream
from tests.support import LOOPBACK, Answer, RunningGateway, assert_problem, running_gateway
from tests.tls_authority import Issued, TestAuthority


def tls_routes(targets: list[str], tls: dict[str, object] | None = None) -> str:
    """A routes.yaml: upstream `up` with `targets` (and `tls`, if given), route `/` to it."""
    lines = ["version: 1", "upstreams:", "  up:", f"    targets: {json.dumps(targets)}"]
    lines += ["    connect_timeout: 2s", "    timeout: 5s"]
    if tls is not None:
        lines.append("    tls:")
        lines += [f"      {key}: {json.dumps(value)}" for key, value in tls.items()]
    lines += [
        "routes:",
        "  - {name: up, path: /, upstream: up, auth: none}",
        "  - {name: ws, path: /ws, upstream: up, auth: none, websocket: true}",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def authority(tmp_path: Path) -> TestAuthority:
    return TestAuthority(tmp_path)


@pytest.fixture
def loopback_cert(authority: TestAuthority) -> Issued:
    """The upstream's certificate, for the address the gateway dials."""
    return authority.issue("upstream", ips=[LOOPBACK])


async def answer(client: ClientSession, gw: RunningGateway, path: str = "/hello") -> Answer:
    async with client.get(f"{gw.url}{path}") as response:
        return Answer(response.status, response.headers, await response.read())


def assert_unavailable(answer: Answer) -> None:
    assert_problem(answer, 502, "upstream_unavailable")


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None, f"{record.name}: {record.getMessage()} has a traceback"
        assert "Traceback" not in record.getMessage()


# -- whom the gateway trusts --------------------------------------------------------------------


async def test_the_test_ca_is_trusted_only_through_ca_file(
    client: ClientSession,
    tmp_path: Path,
    authority: TestAuthority,
    loopback_cert: Issued,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with tls_upstream(server_context(loopback_cert)) as upstream:
        async with running_gateway(tls_routes([upstream.url]), tmp_path) as gw:
            refused = await answer(client, gw)
        assert_unavailable(refused)
        assert upstream.seen == []
        failures = [r for r in caplog.records if "upstream failure" in r.getMessage()]
        assert failures
        assert "CERTIFICATE_VERIFY_FAILED" in failures[0].getMessage()
        assert_no_traceback(caplog)

        routes = tls_routes([upstream.url], {"ca_file": str(authority.path)})
        async with running_gateway(routes, tmp_path) as gw:
            trusted = await answer(client, gw)
    assert trusted.status == 200
    assert upstream.seen[0]["path"] == "/hello"


async def test_the_certificate_must_name_the_target_or_server_name(
    client: ClientSession, tmp_path: Path, authority: TestAuthority
) -> None:
    named = authority.issue("api", dns=["api.upstream.test"])  # not 127.0.0.1
    async with tls_upstream(server_context(named)) as upstream:
        wrong_name = tls_routes([upstream.url], {"ca_file": str(authority.path)})
        async with running_gateway(wrong_name, tmp_path) as gw:
            assert_unavailable(await answer(client, gw))
        assert upstream.seen == []

        right_name = tls_routes(
            [upstream.url], {"ca_file": str(authority.path), "server_name": "api.upstream.test"}
        )
        async with running_gateway(right_name, tmp_path) as gw:
            response = await answer(client, gw)
    assert response.status == 200
    # server_name is the TLS name only: Host stays the target's.
    headers = dict(upstream.seen[0]["headers"])
    assert headers["Host"] == f"{LOOPBACK}:{upstream.port}"
    assert upstream.server_names[-1] == "api.upstream.test"


async def test_sni_carries_the_target_host(
    client: ClientSession, tmp_path: Path, authority: TestAuthority
) -> None:
    local = authority.issue("localhost", dns=["localhost"])
    async with tls_upstream(server_context(local)) as upstream:
        target = f"https://localhost:{upstream.port}"
        routes = tls_routes([target], {"ca_file": str(authority.path)})
        async with running_gateway(routes, tmp_path) as gw:
            response = await answer(client, gw)
    assert response.status == 200
    assert upstream.server_names == ["localhost"]


async def test_an_address_target_sends_no_sni(
    client: ClientSession, tmp_path: Path, authority: TestAuthority, loopback_cert: Issued
) -> None:
    # RFC 6066 section 3: "Literal IPv4 and IPv6 addresses are not permitted in HostName".
    async with tls_upstream(server_context(loopback_cert)) as upstream:
        routes = tls_routes([upstream.url], {"ca_file": str(authority.path)})
        async with running_gateway(routes, tmp_path) as gw:
            response = await answer(client, gw)
    assert response.status == 200
    assert upstream.server_names == [None]


async def test_a_ca_file_replaces_the_system_cas_rather_than_adding_to_them(
    client: ClientSession, tmp_path: Path, authority: TestAuthority, loopback_cert: Issued
) -> None:
    other = TestAuthority(tmp_path, "other-ca")
    async with tls_upstream(server_context(loopback_cert)) as upstream:
        routes = tls_routes([upstream.url], {"ca_file": str(other.path)})
        async with running_gateway(routes, tmp_path) as gw:
            assert_unavailable(await answer(client, gw))
    assert upstream.seen == []


async def test_verify_false_accepts_any_certificate_and_says_so_at_load(
    client: ClientSession,
    tmp_path: Path,
    loopback_cert: Issued,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with tls_upstream(server_context(loopback_cert)) as upstream:
        routes = tls_routes([upstream.url], {"verify": False})
        async with running_gateway(routes, tmp_path) as gw:
            warnings = [
                r.getMessage() for r in caplog.records if "verify is false" in r.getMessage()
            ]
            response = await answer(client, gw)
            response_again = await answer(client, gw)
    assert (response.status, response_again.status) == (200, 200)
    # Once, at load (line 8 of the file: the `verify` key), never a request.
    assert len(warnings) == 1
    assert f"{tmp_path / 'routes.yaml'}:8:" in warnings[0]
    assert [r.getMessage() for r in caplog.records if "verify is false" in r.getMessage()] == (
        warnings
    )


async def test_tls_1_1_upstreams_are_refused(
    client: ClientSession,
    tmp_path: Path,
    authority: TestAuthority,
    loopback_cert: Issued,
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = server_context(loopback_cert)
    try:
        with warnings.catch_warnings():  # deprecated indeed: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1_1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as exc:
        pytest.skip(f"this OpenSSL cannot serve TLS 1.1: {exc}")
    async with tls_upstream(context) as upstream:
        routes = tls_routes([upstream.url], {"ca_file": str(authority.path)})
        async with running_gateway(routes, tmp_path) as gw:
            assert_unavailable(await answer(client, gw))
    assert upstream.seen == []
    failures = [r.getMessage() for r in caplog.records if "upstream failure" in r.getMessage()]
    assert failures
    assert not failures[0].rstrip().endswith(":"), "the log line must give a reason"
    assert_no_traceback(caplog)


# -- mutual TLS ---------------------------------------------------------------------------------


async def test_mutual_tls_needs_the_client_certificate(
    client: ClientSession,
    tmp_path: Path,
    authority: TestAuthority,
    loopback_cert: Issued,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway_cert = authority.issue("gateway-client", client=True)
    context = server_context(loopback_cert, client_ca=authority.path)
    async with tls_upstream(context) as upstream:
        without = tls_routes([upstream.url], {"ca_file": str(authority.path)})
        async with running_gateway(without, tmp_path) as gw:
            assert_unavailable(await answer(client, gw))
        assert upstream.seen == []
        assert_no_traceback(caplog)

        with_cert = tls_routes(
            [upstream.url],
            {
                "ca_file": str(authority.path),
                "cert_file": str(gateway_cert.cert),
                "key_file": str(gateway_cert.key),
            },
        )
        async with running_gateway(with_cert, tmp_path) as gw:
            response = await answer(client, gw)
    assert response.status == 200
    assert upstream.client_subjects == ["gateway-client"]


async def test_a_reload_picks_up_a_renewed_client_certificate(
    client: ClientSession, tmp_path: Path, authority: TestAuthority, loopback_cert: Issued
) -> None:
    # Same routes.yaml, new files under the same names: what cert-manager or certbot do.
    stranger = TestAuthority(tmp_path, "stranger-ca")
    renewed = authority.issue("renewed-client", client=True)
    old = stranger.issue("old-client", client=True)
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    cert.write_bytes(old.cert.read_bytes())
    key.write_bytes(old.key.read_bytes())
    context = server_context(loopback_cert, client_ca=authority.path)
    routes = tls_routes(
        [f"https://{LOOPBACK}:0"],  # the port is written below, once the upstream has one
        {"ca_file": str(authority.path), "cert_file": str(cert), "key_file": str(key)},
    )
    async with tls_upstream(context) as upstream:
        routes = routes.replace(f"{LOOPBACK}:0", f"{LOOPBACK}:{upstream.port}")
        async with running_gateway(routes, tmp_path) as gw:
            assert_unavailable(await answer(client, gw))  # a client certificate it does not know

            cert.write_bytes(renewed.cert.read_bytes())
            key.write_bytes(renewed.key.read_bytes())
            assert gw.worker.reload()
            response = await answer(client, gw)
    assert response.status == 200
    assert upstream.client_subjects == ["renewed-client"]


# -- reloads ------------------------------------------------------------------------------------


async def test_a_reload_rebuilds_the_context_and_a_bad_file_keeps_the_old_one(
    client: ClientSession,
    tmp_path: Path,
    authority: TestAuthority,
    loopback_cert: Issued,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        tls_upstream(server_context(loopback_cert)) as upstream,
        running_gateway(tls_routes([upstream.url]), tmp_path) as gw,
    ):
        assert_unavailable(await answer(client, gw))

        gw.config.write_text(tls_routes([upstream.url], {"ca_file": str(authority.path)}))
        assert gw.worker.reload()
        assert (await answer(client, gw)).status == 200

        missing = tmp_path / "gone.pem"
        gw.config.write_text(tls_routes([upstream.url], {"ca_file": str(missing)}))
        assert not gw.worker.reload()
        assert (await answer(client, gw)).status == 200
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any(
        f"routes.yaml:8: upstreams.up.tls.ca_file: cannot read {missing}" in r for r in refusals
    )
    assert_no_traceback(caplog)


async def test_connections_made_under_old_tls_settings_are_not_reused(
    client: ClientSession, tmp_path: Path, loopback_cert: Issued
) -> None:
    # Kept alive under verify: false, then the settings say to trust only a CA that did not
    # sign this upstream: the next request must not ride the old, unchecked connection.
    other = TestAuthority(tmp_path, "other-ca")
    async with (
        tls_upstream(server_context(loopback_cert)) as upstream,
        running_gateway(tls_routes([upstream.url], {"verify": False}), tmp_path) as gw,
    ):
        assert (await answer(client, gw)).status == 200
        gw.config.write_text(tls_routes([upstream.url], {"ca_file": str(other.path)}))
        assert gw.worker.reload()
        assert_unavailable(await answer(client, gw))
    assert len(upstream.seen) == 1


# -- websockets ---------------------------------------------------------------------------------


async def socket_echo(request: web.Request) -> web.StreamResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        if message.type == WSMsgType.TEXT:
            await socket.send_str(f"echo: {message.data}")
    return socket


async def test_websockets_reach_a_wss_upstream_with_its_tls(
    client: ClientSession, tmp_path: Path, authority: TestAuthority
) -> None:
    named = authority.issue("sockets", dns=["sockets.upstream.test"])
    gateway_cert = authority.issue("gateway-client", client=True)
    context = server_context(named, client_ca=authority.path)
    async with tls_upstream(context, socket_echo) as upstream:
        tls: dict[str, object] = {"ca_file": str(authority.path)}
        tls["cert_file"], tls["key_file"] = str(gateway_cert.cert), str(gateway_cert.key)
        async with running_gateway(tls_routes([upstream.url], tls), tmp_path) as gw:
            # Without server_name the name check fails: the upgrade is answered 502.
            async with client.get(
                f"{gw.url}/ws",
                headers={
                    "Connection": "Upgrade",
                    "Upgrade": "websocket",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                },
            ) as refused:
                assert refused.status == 502
            tls["server_name"] = "sockets.upstream.test"
            gw.config.write_text(tls_routes([upstream.url], tls))
            assert gw.worker.reload()
            async with client.ws_connect(f"ws://{LOOPBACK}:{gw.port}/ws") as socket:
                await socket.send_str("over wss")
                reply = await socket.receive_str()
    assert reply == "echo: over wss"
    assert upstream.server_names[-1] == "sockets.upstream.test"
    assert upstream.client_subjects == ["gateway-client"]
