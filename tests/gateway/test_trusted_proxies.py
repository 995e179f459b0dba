"""GATEWAY_TRUSTED_PROXIES names the peers whose `X-Forwarded-For`, `X-Forwarded-Proto` and
`X-Forwarded-Host` are believed; with a list configured, every other peer is still a client
whose forwarding headers are its own inventions. Through a running gateway to a real echo
upstream that reports what it received.

The client connects from 127.0.0.2 (a second loopback address bound as the connection's
source; the gateway listens on 127.0.0.1). Trusted proxies `127.0.0.2/32` make it a proxy;
`127.0.0.3/32` configures a list that does not hold it.

Guards against the mutation of gateway/pipeline/client_address.py that marked every peer as a
trusted proxy as soon as any was configured (`if resolver.trusted:` without `is_trusted(peer)`),
which passed every other test: an untrusted client's `X-Forwarded-Proto: https` and
`X-Forwarded-Host` then reached the upstream as the gateway's word, and its forged
`X-Forwarded-For` chain with them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import netaddr
import pytest

from tests.support import (
    LOOPBACK,
    RawResponse,
    Upstream,
    parse_responses,
    quiet_settings,
    running_gateway,
)

SOURCE = "127.0.0.2"
HOST = "gateway.internal"  # the Host the client sends the gateway
FORGED = {
    "X-Forwarded-For": "198.51.100.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "public.example.com",
}


def table(upstream: Upstream) -> str:
    return (
        "version: 1\n"
        f"upstreams:\n  echo: {{targets: ['{upstream.url}']}}\n"
        "routes:\n"
        "  - {name: echo, path: /echo, upstream: echo, auth: none, strip_prefix: true}\n"
    )


async def request_from(source: str, port: int, headers: dict[str, str]) -> RawResponse:
    """One GET over a raw connection whose source address is `source`."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port, local_addr=(source, 0))
    try:
        assert writer.get_extra_info("sockname")[0] == source
        lines = ["GET /echo/who HTTP/1.1", f"Host: {HOST}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    responses = parse_responses(data)
    assert responses, data
    return responses[0]


def received(upstream: Upstream) -> dict[str, list[str]]:
    """The forwarding headers of the upstream's last request: lower-case name -> every value."""
    headers: dict[str, list[str]] = {}
    for name, value in upstream.seen[-1]["headers"]:
        if name.lower().startswith("x-forwarded-"):
            headers.setdefault(name.lower(), []).append(value)
    return headers


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        pytest.param(
            "127.0.0.3/32",
            {
                "x-forwarded-for": [SOURCE],
                "x-forwarded-proto": ["http"],
                "x-forwarded-host": [HOST],
            },
            id="another-peer-trusted",
        ),
        pytest.param(
            "127.0.0.2/32",
            {
                "x-forwarded-for": [f"198.51.100.7, {SOURCE}"],
                "x-forwarded-proto": ["https"],
                "x-forwarded-host": ["public.example.com"],
            },
            id="this-peer-trusted",
        ),
    ],
)
async def test_only_a_listed_peer_is_believed(
    tmp_path: Path, upstream: Upstream, trusted: str, expected: dict[str, list[str]]
) -> None:
    settings = quiet_settings(trusted_proxies=netaddr.IPSet([trusted]))
    async with running_gateway(table(upstream), tmp_path, settings) as gw:
        response = await request_from(SOURCE, gw.port, FORGED)
        assert response.status == 200, response.body
        assert received(upstream) == expected
        # Without forwarding headers, a listed proxy's request is its own.
        response = await request_from(SOURCE, gw.port, {})
        assert response.status == 200, response.body
        assert received(upstream) == {
            "x-forwarded-for": [SOURCE],
            "x-forwarded-proto": ["http"],
            "x-forwarded-host": [HOST],
        }
