"""Certificates renewed on disk are served without a restart, on SIGHUP (Worker.reload, what
the signal calls) or when the files change; connections already open keep working; a bad
replacement is refused in one log line and the certificate in force stays (docs/tls.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from tests.gateway.tls.certs import Authority
from tests.gateway.tls.client import TlsClient, https_get, metric
from tests.gateway.tls.conftest import StartTls
from tests.support import Upstream, routes, upstream_server

ECHO = "{name: echo, path: /echo, upstream: echo, auth: none}"
RELOADS = "gateway_tls_certificate_reloads_total"
WAIT = 20.0


@pytest.fixture
async def upstream() -> Upstream:  # type: ignore[misc]
    async with upstream_server() as server:
        yield server


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_sighup_serves_the_renewed_certificate_and_keeps_live_connections(
    start_tls: StartTls, upstream: Upstream, authority: Authority
) -> None:
    async with start_tls(routes({"echo": [upstream.url]}, ECHO), names=("a.test",)) as gw:
        live = await TlsClient.connect(gw.port, authority.client(), "a.test")
        assert (await live.get("/echo")).status == 200
        old = live.serial

        renewed = authority.issue(gw.certs / "a.test.crt", gw.certs / "a.test.key", "a.test")
        assert gw.worker.reload() is True

        _, served = await https_get(gw.port, authority.client(), "a.test", "/echo")
        assert served == renewed != old
        # The connection opened before the reload goes on, with the certificate it had.
        assert (await live.get("/echo")).status == 200
        assert live.serial == old
        await live.close()
        assert await metric(gw.port, authority.client(), RELOADS, result="applied") == 1


async def test_a_change_on_disk_is_noticed_without_a_signal(
    start_tls: StartTls, upstream: Upstream, authority: Authority
) -> None:
    async with start_tls(
        routes({"echo": [upstream.url]}, ECHO),
        names=("a.test",),
        watch_config=True,
        reload_interval=0.05,
    ) as gw:
        renewed = authority.issue(gw.certs / "a.test.crt", gw.certs / "a.test.key", "a.test")

        async def renewed_served() -> bool:
            _, served = await https_get(gw.port, authority.client(), "a.test", "/echo")
            return served == renewed

        await until(renewed_served, "the renewed certificate")
        # A name added to the directory is served too.
        added = authority.issue(gw.certs / "b.test.crt", gw.certs / "b.test.key", "b.test")

        async def added_served() -> bool:
            try:
                _, served = await https_get(gw.port, authority.client(), "b.test", "/echo")
            except (OSError, AssertionError):
                return False
            return served == added

        await until(added_served, "the added name")


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        pytest.param("garbage", "not a PEM certificate", id="not a certificate"),
        pytest.param("other key", "the key does not belong to the certificate", id="wrong key"),
        pytest.param("no key", "has no a.test.key", id="key missing"),
    ],
)
async def test_a_bad_replacement_is_refused_and_the_old_certificate_stays(
    start_tls: StartTls,
    upstream: Upstream,
    authority: Authority,
    caplog: pytest.LogCaptureFixture,
    spoil: str,
    reason: str,
) -> None:
    async with start_tls(routes({"echo": [upstream.url]}, ECHO), names=("a.test",)) as gw:
        _, before = await https_get(gw.port, authority.client(), "a.test", "/echo")
        cert, key = gw.certs / "a.test.crt", gw.certs / "a.test.key"
        if spoil == "garbage":
            cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
        elif spoil == "other key":
            authority.issue(gw.certs / "x.crt.tmp", key, "a.test")  # a new key, the old cert
        else:
            key.unlink()
        with caplog.at_level(logging.ERROR, logger="gateway.tls"):
            assert gw.worker.reload() is False
        (record,) = [r for r in caplog.records if r.name == "gateway.tls"]
        assert "TLS certificates refused, the previous ones stay in force" in record.getMessage()
        assert reason in record.getMessage()
        assert record.exc_info is None  # one line, no stack trace

        _, after = await https_get(gw.port, authority.client(), "a.test", "/echo")
        assert after == before
        assert await metric(gw.port, authority.client(), RELOADS, result="refused") == 1
