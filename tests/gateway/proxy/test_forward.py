"""Forwarding (docs/routes.md, Context headers to upstreams, Limits and hostile input):
what the upstream receives and what comes back.

Methods, request targets and bodies arrive as sent; bodies of any size stream both ways in flat
memory; hop-by-hop and identity headers never cross; the forwarding, request id and trace
headers are the gateway's; the response keeps its headers but not its hop-by-hop ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout, web
from multidict import CIMultiDictProxy
from netaddr import IPSet

from gateway.config import Settings
from tests.gateway.proxy.conftest import (
    OK,
    WAIT,
    MiB,
    Received,
    Reply,
    Then,
    body_chunks,
    chunked,
    digest_of,
    hashing_handler,
    peak_rss,
    raw_client,
    raw_upstream,
    read_response,
    request_bytes,
    reset_peak_rss,
    send_raw,
    single_route,
    until,
)
from tests.support import (
    LOOPBACK,
    RunningGateway,
    Upstream,
    cases,
    quiet_settings,
    running_gateway,
    upstream_server,
)

# Memory a streamed body may cost the process that runs client, gateway and upstream at once;
# buffering a 1 GiB upload or a 256 MiB download would blow far past it.
MEMORY_ALLOWANCE = 150 * MiB
SLOW = ClientTimeout(total=900, sock_read=120)

IDENTITY_PREFIXES = ("x-user-", "x-tenant-", "x-auth-", "x-session-", "x-gateway-")
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def received(document: dict[str, Any], name: str) -> list[str]:
    """Every value of header `name` the echo upstream received, in order."""
    return [value for key, value in document["headers"] if key.lower() == name.lower()]


def received_names(document: dict[str, Any]) -> set[str]:
    return {key.lower() for key, _ in document["headers"]}


@pytest.fixture
async def hashing_gateway(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """`/` forwarded to an upstream that hashes the bodies it reads; max_body 2g."""
    async with (
        upstream_server(hashing_handler) as upstream,
        running_gateway(single_route([upstream.url], route="max_body: 2g"), tmp_path) as gw,
    ):
        yield gw


# -- methods and targets -----------------------------------------------------------------------

METHODS = [
    ("GET", b""),
    ("POST", b'{"a": 1}'),
    ("PUT", b'{"a": 2}'),
    ("PATCH", b'{"a": 3}'),
    ("DELETE", b""),
    ("OPTIONS", b""),
    ("HEAD", b""),
]


@pytest.mark.parametrize(("method", "body"), METHODS, ids=[m for m, _ in METHODS])
async def test_method_is_forwarded_as_is(
    upstream: Upstream, gateway: RunningGateway, client: ClientSession, method: str, body: bytes
) -> None:
    async with client.request(method, f"{gateway.url}/echo/m", data=body or None) as response:
        assert response.status == 200
        await response.read()
    assert [(seen["method"], seen["body_size"]) for seen in upstream.seen] == [(method, len(body))]


QUERIES = [
    ("repeated keys, a bad escape, an empty value", b"?a=1&a=2&b=%zz&c="),
    ("encoded slashes and dots", b"?x=%2F..%2F"),
    ("escapes keep their case", b"?q=%e2%9c%93&r=%E2%9C%93"),
    ("plus and encoded space", b"?q=a+b%20c"),
    ("a bare question mark", b"?"),
    ("only separators", b"?&&=&"),
    ("a path in a value", b"?next=/a/../b//c"),
    ("question marks inside", b"?a=?b?"),
    ("reserved characters", b"?a=1;b=2&c=$,:@!*'()"),
]


@pytest.mark.parametrize("query", [q for _, q in QUERIES], ids=[d for d, _ in QUERIES])
async def test_query_string_is_forwarded_byte_for_byte(tmp_path: Path, query: bytes) -> None:
    async with (
        raw_upstream(lambda _: Reply(OK)) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
    ):
        response = await send_raw(gw.port, request_bytes("GET", b"/q/x" + query))
    assert response.status == 200
    assert [r.target for r in upstream.received] == [b"/q/x" + query]


STRIPPED = [
    ("a path below the prefix", b"/api/v1/users?x=1", "/users?x=1"),
    ("the prefix itself", b"/api/v1", "/"),
    ("the prefix with a slash", b"/api/v1/", "/"),
    ("canonical path first, then stripped", b"/api/v1//a/./b/../c", "/a/c"),
    ("a route without strip_prefix", b"/echo/users", "/echo/users"),
]


@pytest.mark.parametrize(("target", "forwarded"), cases(STRIPPED))
async def test_strip_prefix_forwards_the_rest_of_the_path(
    upstream: Upstream, gateway: RunningGateway, target: bytes, forwarded: str
) -> None:
    response = await send_raw(gateway.port, request_bytes("GET", target))
    assert response.status == 200
    assert response.json()["path"] == forwarded


# -- request bodies ----------------------------------------------------------------------------

SIZES = [
    ("empty", 0),
    ("one byte", 1),
    ("the largest inlined body", 64 * 1024),
    ("the smallest streamed body", 64 * 1024 + 1),
    ("five MiB", 5 * MiB),
]


@pytest.mark.parametrize("size", [s for _, s in SIZES], ids=[d for d, _ in SIZES])
async def test_body_with_content_length_arrives_intact(
    hashing_gateway: RunningGateway, client: ClientSession, size: int
) -> None:
    body = b"".join(body_chunks(size, 4096))
    url = f"{hashing_gateway.url}/upload"
    async with client.post(url, data=io.BytesIO(body)) as response:
        assert response.status == 200
        document = await response.json()
    assert document["size"] == size
    assert document["sha256"] == hashlib.sha256(body).hexdigest()
    assert document["content_length"] == str(size)
    assert document["transfer_encoding"] is None


def pieces(*sizes: int) -> list[bytes]:
    return [bytes([65 + i % 26]) * size for i, size in enumerate(sizes)]


CHUNKED = [
    ("one chunk", pieces(1000), b"", b""),
    ("many small chunks", pieces(*[1] * 300, *[7] * 50), b"", b""),
    ("chunks larger than the inline size", pieces(100_000, 70_000, 3), b"", b""),
    ("chunk extensions", pieces(10, 20), b';name="value"', b""),
    ("trailer fields", pieces(10, 20), b"", b"X-Checksum: abc\r\n"),
    ("no data at all", [], b"", b""),
]


@pytest.mark.parametrize(("parts", "extension", "trailers"), cases(CHUNKED))
async def test_chunked_body_arrives_intact(
    hashing_gateway: RunningGateway, parts: list[bytes], extension: bytes, trailers: bytes
) -> None:
    body = chunked(*parts, extension=extension, trailers=trailers)
    data = request_bytes("POST", b"/upload", b"Transfer-Encoding: chunked", body=body)
    response = await send_raw(hashing_gateway.port, data)
    assert response.status == 200
    document = response.json()
    assert document["size"] == sum(map(len, parts))
    assert document["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert document["transfer_encoding"] == "chunked"
    assert document["content_length"] is None


UPLOADS = [
    # (description, size, the upstream's pause after every MiB it reads)
    ("1 GiB to a fast upstream", 1024 * MiB, 0.0),
    ("512 MiB to a slow upstream", 512 * MiB, 0.005),
]


@pytest.mark.parametrize(("total", "pace"), cases(UPLOADS))
async def test_a_large_upload_streams_through_in_flat_memory(
    hashing_gateway: RunningGateway, client: ClientSession, total: int, pace: float
) -> None:
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for chunk in body_chunks(total):
            digest.update(chunk)
            yield chunk

    reset_peak_rss()
    before = peak_rss()
    url = f"{hashing_gateway.url}/upload?pace={pace}"
    async with client.post(url, data=body(), timeout=SLOW) as response:
        assert response.status == 200
        document = await response.json()
    growth = peak_rss() - before
    assert document["size"] == total
    assert document["sha256"] == digest.hexdigest()
    assert document["transfer_encoding"] == "chunked"
    assert growth < MEMORY_ALLOWANCE, f"peak memory grew by {growth / MiB:.0f} MiB"


async def download_handler(request: web.Request) -> web.StreamResponse:
    """`size` bytes of body_chunks, chunked or with a Content-Length (`?framing=length`)."""
    size = int(request.query["size"])
    response = web.StreamResponse()
    if request.query.get("framing") == "length":
        response.content_length = size
    await response.prepare(request)
    for chunk in body_chunks(size):
        await response.write(chunk)
    await response.write_eof()
    return response


DOWNLOADS = [
    # (description, framing, the client's pause after every MiB it reads)
    ("chunked", "chunked", 0.0),
    ("with a Content-Length", "length", 0.0),
    ("to a slow client", "chunked", 0.005),
]


@pytest.mark.parametrize(("framing", "pace"), cases(DOWNLOADS))
async def test_a_large_download_streams_through_in_flat_memory(
    client: ClientSession, tmp_path: Path, framing: str, pace: float
) -> None:
    total = 256 * MiB
    async with (
        upstream_server(download_handler) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
    ):
        reset_peak_rss()
        before = peak_rss()
        digest = hashlib.sha256()
        size = 0
        url = f"{gw.url}/download?size={total}&framing={framing}"
        async with client.get(url, timeout=SLOW) as response:
            assert response.status == 200
            async for chunk in response.content.iter_chunked(MiB):
                digest.update(chunk)
                size += len(chunk)
                if pace:
                    await asyncio.sleep(pace)
        growth = peak_rss() - before
    assert size == total
    assert digest.hexdigest() == digest_of(total)
    if framing == "length":
        assert response.headers["Content-Length"] == str(total)
    else:
        assert response.headers["Transfer-Encoding"] == "chunked"
    assert growth < MEMORY_ALLOWANCE, f"peak memory grew by {growth / MiB:.0f} MiB"


LIMITS = [
    # (description, framing, body in pieces (chunks when chunked), status)
    ("declared length at the limit", "length", [b"x" * 1024], 200),
    ("declared length over the limit", "length", [b"x" * 1025], 413),
    ("chunked, at the limit", "chunked", pieces(512, 512), 200),
    ("chunked, over in one chunk", "chunked", pieces(1025), 413),
    ("chunked, over in many chunks", "chunked", pieces(*[100] * 11), 413),
]


@pytest.mark.parametrize(("framing", "parts", "status"), cases(LIMITS))
async def test_max_body_is_enforced(
    tmp_path: Path, framing: str, parts: list[bytes], status: int
) -> None:
    payload = b"".join(parts)
    if framing == "length":
        data = request_bytes("POST", b"/up", b"Content-Length: %d" % len(payload), body=payload)
    else:
        data = request_bytes("POST", b"/up", b"Transfer-Encoding: chunked", body=chunked(*parts))
    async with (
        raw_upstream(lambda _: Reply(OK)) as upstream,
        running_gateway(single_route([upstream.url], route="max_body: 1k"), tmp_path) as gw,
    ):
        response = await send_raw(gw.port, data)
    assert response.status == status
    if status == 200:
        assert [r.body for r in upstream.received] == [payload]
        return
    problem = response.json()
    assert response.header("Content-Type") == "application/problem+json"
    assert problem["error"] == "payload_too_large"
    assert problem["request_id"] == response.header("X-Request-Id")
    assert upstream.received == []  # no request ever completed upstream
    if framing == "length":
        assert upstream.connections == 0  # refused before the upstream was even contacted


EARLY_ANSWER = (
    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!"
)


@pytest.mark.parametrize(
    "then",
    [
        pytest.param("hang", id="and keeps the connection open"),
        pytest.param(
            "close",
            id="and closes the connection",
        ),
    ],
)
async def test_upstream_answer_before_the_body_ends_reaches_the_client(
    tmp_path: Path, then: Then
) -> None:
    """An upstream may answer (say, its own 413) before reading the body; the forwarder stops
    sending and passes the answer on."""
    first_chunk = b"10\r\n" + b"x" * 16 + b"\r\n"
    async with (
        raw_upstream(lambda _: Reply(EARLY_ANSWER, then=then), read_bodies=False) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        head = request_bytes("POST", b"/early", b"Transfer-Encoding: chunked")
        connection.writer.write(head + first_chunk)
        await until(lambda: upstream.received != [] and (then == "hang" or upstream.closed == 1))
        await asyncio.sleep(0.2)  # one turn of the loop or more: the gateway reads the answer
        response = await connection.exchange(chunked(b"y" * 16))
    assert response.status == 413
    assert response.body == b"big!"


# -- request headers ---------------------------------------------------------------------------

HOP_BY_HOP = [
    (
        "the hop-by-hop headers of RFC 9110",
        [
            b"Connection: keep-alive",
            b"Keep-Alive: timeout=5, max=100",
            b"TE: trailers",
            b"Trailer: X-Checksum",
            b"Upgrade: h2c",
            b"Proxy-Authorization: Basic dXNlcjpwYXNz",
            b"Proxy-Connection: keep-alive",
        ],
        {"keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection"},
    ),
    (
        "headers named in Connection",
        [b"Connection: close, X-Secret, x-other", b"X-Secret: s", b"X-OTHER: o"],
        {"x-secret", "x-other"},
    ),
    (
        "names spread over two Connection headers",
        [b"Connection: X-A", b"X-A: 1", b"Connection: x-b", b"x-B: 2"],
        {"x-a", "x-b"},
    ),
    (
        "odd spacing and empty entries in Connection",
        [b"Connection: , X-Spaced ,,X-CASE  ", b"x-spaced: 1", b"x-case: 2"],
        {"x-spaced", "x-case"},
    ),
]


@pytest.mark.parametrize(("lines", "dropped"), cases(HOP_BY_HOP))
async def test_hop_by_hop_request_headers_do_not_reach_the_upstream(
    upstream: Upstream, gateway: RunningGateway, lines: list[bytes], dropped: set[str]
) -> None:
    data = request_bytes("GET", b"/echo/h", *lines, b"X-Kept: yes")
    response = await send_raw(gateway.port, data)
    assert response.status == 200
    document = response.json()
    assert received(document, "X-Kept") == ["yes"]
    assert not received_names(document) & (dropped | {"connection"})


IDENTITY = [
    (
        "user headers in any case, repeated",
        [b"X-User-Id: 1", b"x-user-id: 2", b"X-USER-ROLES: admin", b"x-User-Email: a@b.example"],
    ),
    ("tenant headers", [b"x-tenant-id: t1", b"X-TENANT-NAME: acme"]),
    ("a forged auth method", [b"X-AUTH-METHOD: jwt", b"x-auth-method: service", b"X-Auth-X: 1"]),
    ("session headers", [b"X-Session-Id: s1", b"x-SESSION-anything: x"]),
    (
        "a forged gateway signature",
        [b"X-Gateway-Signature: v1,kid=k,sig=forged", b"X-GATEWAY-Timestamp: 1"],
    ),
]


@pytest.mark.parametrize("lines", cases(IDENTITY))
async def test_client_identity_headers_never_reach_the_upstream(
    upstream: Upstream, gateway: RunningGateway, lines: list[bytes]
) -> None:
    data = request_bytes("GET", b"/echo/i", *lines, b"X-Userinfo: kept", b"Connection: close")
    response = await send_raw(gateway.port, data)
    assert response.status == 200
    document = response.json()
    identity = [name for name in received_names(document) if name.startswith(IDENTITY_PREFIXES)]
    # Only the gateway's own, once each: the method and its signature over the context.
    assert sorted(identity) == ["x-auth-method", "x-gateway-signature", "x-gateway-timestamp"]
    assert received(document, "X-Auth-Method") == ["none"]
    assert "forged" not in received(document, "X-Gateway-Signature")[0]
    assert received(document, "X-Userinfo") == ["kept"]  # a look-alike name is not an identity


async def test_a_forged_credential_id_never_reaches_the_upstream(
    upstream: Upstream, gateway: RunningGateway
) -> None:
    data = request_bytes("GET", b"/echo/i", b"X-Credential-Id: key_123", b"Connection: close")
    document = (await send_raw(gateway.port, data)).json()
    assert received(document, "X-Credential-Id") == []


FORWARDED = [
    # (description, peer trusted, client header lines, X-Forwarded-For, -Proto, -Host upstream)
    ("no forwarding headers", False, [], "127.0.0.1", "http", "api.example.com"),
    (
        "forged ones from an untrusted peer are replaced",
        False,
        [
            b"X-Forwarded-For: 6.6.6.6",
            b"X-Forwarded-Proto: https",
            b"X-Forwarded-Host: evil.example",
            b"X-Real-IP: 6.6.6.6",
            b"Forwarded: for=6.6.6.6",
        ],
        "127.0.0.1",
        "http",
        "api.example.com",
    ),
    ("a trusted peer with none", True, [], "127.0.0.1", "http", "api.example.com"),
    (
        "a trusted peer's chain is extended",
        True,
        [b"X-Forwarded-For: 198.51.100.7"],
        "198.51.100.7, 127.0.0.1",
        "http",
        "api.example.com",
    ),
    (
        "several headers from a trusted peer are one chain",
        True,
        [b"X-Forwarded-For: 6.6.6.6, 198.51.100.7", b"X-Forwarded-For: 127.0.0.5"],
        "6.6.6.6, 198.51.100.7, 127.0.0.5, 127.0.0.1",
        "http",
        "api.example.com",
    ),
    (
        "a trusted peer's proto and host are believed",
        True,
        [
            b"X-Forwarded-For: 198.51.100.7",
            b"X-Forwarded-Proto: https",
            b"X-Forwarded-Host: public.example",
        ],
        "198.51.100.7, 127.0.0.1",
        "https",
        "public.example",
    ),
]


def trusting(trusted: bool) -> Settings:
    proxies = ["127.0.0.0/8"] if trusted else []
    return quiet_settings(trusted_proxies=IPSet(proxies))


@pytest.mark.parametrize(("trusted", "lines", "forwarded_for", "proto", "host"), cases(FORWARDED))
async def test_forwarding_headers(
    upstream: Upstream,
    tmp_path: Path,
    trusted: bool,
    lines: list[bytes],
    forwarded_for: str,
    proto: str,
    host: str,
) -> None:
    async with running_gateway(single_route([upstream.url]), tmp_path, trusting(trusted)) as gw:
        data = request_bytes("GET", b"/f", *lines, host=b"api.example.com")
        response = await send_raw(gw.port, data)
    assert response.status == 200
    document = response.json()
    assert received(document, "X-Forwarded-For") == [forwarded_for]
    assert received(document, "X-Forwarded-Proto") == [proto]
    assert received(document, "X-Forwarded-Host") == [host]
    assert received(document, "Host") == [f"{LOOPBACK}:{upstream.port}"]
    assert received(document, "X-Real-IP") == []
    assert received(document, "Forwarded") == []


CLIENTS = [
    # (description, peer trusted, X-Forwarded-For, /metrics status: only loopback clients see it)
    ("an untrusted peer's forged header is ignored", False, b"198.51.100.7", 200),
    ("a trusted peer's entry is the client", True, b"198.51.100.7", 403),
    ("read right to left: the last untrusted entry", True, b"127.0.0.7, 198.51.100.7", 403),
    ("trusted entries on the right are skipped", True, b"198.51.100.7, 127.0.0.9", 403),
    ("all entries trusted: the leftmost", True, b"127.0.0.9, 127.0.0.8", 200),
]


@pytest.mark.parametrize(("trusted", "forwarded_for", "status"), cases(CLIENTS))
async def test_client_address_is_resolved_from_trusted_proxies(
    upstream: Upstream, tmp_path: Path, trusted: bool, forwarded_for: bytes, status: int
) -> None:
    async with running_gateway(single_route([upstream.url]), tmp_path, trusting(trusted)) as gw:
        data = request_bytes("GET", b"/metrics", b"X-Forwarded-For: " + forwarded_for)
        response = await send_raw(gw.port, data)
    assert response.status == status


async def echoed(
    gateway: RunningGateway, client: ClientSession, name: str, value: str | None
) -> tuple[CIMultiDictProxy[str], dict[str, Any]]:
    """A GET of /echo with the header `name: value` (without it when `value` is None): the
    answer's headers, and what the echo upstream received."""
    headers = {} if value is None else {name: value}
    async with client.get(f"{gateway.url}/echo/x", headers=headers) as response:
        assert response.status == 200
        return response.headers, await response.json()


REQUEST_IDS = [
    ("a valid id is kept", "abc-123_X.y", True),
    ("64 characters are kept", "a" * 64, True),
    ("65 characters are replaced", "a" * 65, False),
    ("a space and a bang are replaced", "bad id!", False),
    ("a slash is replaced", "id/1", False),
    ("an empty id is replaced", "", False),
    ("an absent id is made", None, False),
]


@pytest.mark.parametrize(("sent", "kept"), cases(REQUEST_IDS))
async def test_request_id_reaches_the_upstream_and_comes_back(
    gateway: RunningGateway, client: ClientSession, sent: str | None, kept: bool
) -> None:
    answered, document = await echoed(gateway, client, "X-Request-Id", sent)
    returned = answered.getall("X-Request-Id")
    assert received(document, "X-Request-Id") == returned
    assert len(returned) == 1
    if kept:
        assert returned == [sent]
    else:
        assert returned != [sent]
        assert REQUEST_ID.fullmatch(returned[0])


async def test_made_request_ids_are_unguessable(
    upstream: Upstream, gateway: RunningGateway, client: ClientSession
) -> None:
    """One's own request ids must not tell the ids of others' requests (they key the audit log
    and the logs): 128 random bits each, not a counter behind a shared prefix."""
    ids = []
    for _ in range(20):
        async with client.get(f"{gateway.url}/echo/r") as response:
            assert response.status == 200
            ids.append(response.headers["X-Request-Id"])
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids), ids
    assert len({value[:12] for value in ids}) == 20  # no shared prefix
    assert len({value[-8:] for value in ids}) == 20  # no counter at the end either
    numbers = [int(value, 16) for value in ids]
    assert len({b - a for a, b in itertools.pairwise(numbers)}) == 19  # no fixed step


VALID_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

TRACES = [
    ("a valid traceparent is kept", VALID_TRACE, True),
    ("not sampled is still valid", VALID_TRACE[:-2] + "00", True),
    ("garbage is replaced", "garbage", False),
    ("upper-case hex is replaced", VALID_TRACE.upper(), False),
    ("an all-zero trace id is replaced", f"00-{'0' * 32}-00f067aa0ba902b7-01", False),
    (
        "an all-zero parent id is replaced",
        f"00-4bf92f3577b34da6a3ce929d0e0e4736-{'0' * 16}-01",
        False,
    ),
    ("version ff is replaced", "ff" + VALID_TRACE[2:], False),
    ("a short trace id is replaced", "00-4bf92f35-00f067aa0ba902b7-01", False),
    ("an absent traceparent is started", None, False),
]


@pytest.mark.parametrize(("sent", "kept"), cases(TRACES))
async def test_traceparent_is_kept_when_valid_and_started_otherwise(
    gateway: RunningGateway, client: ClientSession, sent: str | None, kept: bool
) -> None:
    _, document = await echoed(gateway, client, "traceparent", sent)
    [value] = received(document, "traceparent")
    if kept:
        assert value == sent
        return
    match = TRACEPARENT.fullmatch(value)
    assert match is not None
    assert match.group(1) != "0" * 32
    assert match.group(2) != "0" * 16
    assert value != sent


# -- responses ---------------------------------------------------------------------------------


async def test_set_cookie_headers_come_back_separately_and_intact(
    gateway: RunningGateway, client: ClientSession
) -> None:
    async with client.get(f"{gateway.url}/echo/c", headers={"X-Test-Cookies": "3"}) as response:
        assert response.status == 200
        await response.read()
    assert response.headers.getall("Set-Cookie") == [
        f"c{i}=v{i}; Path=/; HttpOnly" for i in range(3)
    ]


FRAMINGS = [
    # (description, the upstream's answer, what it does then, the body the client gets)
    (
        "100 Continue is not passed on",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "keep",
        b"ok",
    ),
    (
        "103 Early Hints, twice, are not passed on",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" * 2
        + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "keep",
        b"ok",
    ),
    (
        "a body delimited by the end of the connection",
        b"HTTP/1.1 200 OK\r\n\r\n" + b"y" * 300_000,
        "close",
        b"y" * 300_000,
    ),
    (
        "a chunked body with trailer fields",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(b"abc", b"defg", trailers=b"X-Sum: 1\r\n"),
        "keep",
        b"abcdefg",
    ),
    (
        "an empty chunked body",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "keep",
        b"",
    ),
]


@pytest.mark.parametrize(("answer", "then", "body"), cases(FRAMINGS))
async def test_response_framing(tmp_path: Path, answer: bytes, then: Then, body: bytes) -> None:
    async with (
        raw_upstream(lambda _: Reply(answer, then=then)) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        for _ in range(2):  # the client connection stays usable
            response = await connection.exchange(request_bytes("GET", b"/framed"))
            assert response.status == 200
            assert response.body == body


FIXED_BODY = bytes(range(256)) * 400  # 100 KiB: larger than what is written in one go


async def fixed_handler(request: web.Request) -> web.StreamResponse:
    return web.Response(body=FIXED_BODY, content_type="application/octet-stream")


async def test_head_has_the_length_of_get_and_no_body(tmp_path: Path) -> None:
    async with (
        upstream_server(fixed_handler) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        # One client connection, one upstream connection: a body after a HEAD answer would be
        # read as the start of the next response, and fail to parse.
        for method in ("GET", "HEAD", "HEAD", "GET", "HEAD", "GET"):
            response = await connection.exchange(request_bytes(method, b"/f"), method)
            assert response.status == 200
            assert response.header("Content-Length") == str(len(FIXED_BODY))
            assert response.body == (FIXED_BODY if method == "GET" else b"")
        end = request_bytes("GET", b"/f", b"Connection: close")
        assert (await connection.exchange(end)).body == FIXED_BODY
        assert await connection.rest() == b""


@pytest.mark.parametrize("status", [204, 304])
async def test_bodyless_statuses_have_no_body_and_keep_the_connection(
    gateway: RunningGateway, status: int
) -> None:
    async with raw_client(gateway.port) as connection:
        for _ in range(2):
            data = request_bytes("GET", b"/echo/s", b"X-Test-Status: %d" % status)
            response = await connection.exchange(data)
            assert response.status == status
            assert response.header("Transfer-Encoding") is None
            if status == 204:
                assert response.header("Content-Length") is None
            after = await connection.exchange(request_bytes("GET", b"/echo/after"))
            assert after.status == 200
            assert after.json()["path"] == "/echo/after"


HOP_BY_HOP_RESPONSE = [
    (
        "hop-by-hop headers and those named in Connection",
        [
            b"Connection: x-internal",
            b"X-Internal: 1",
            b"Keep-Alive: timeout=5",
            b"Proxy-Authenticate: Basic",
            b"Proxy-Connection: keep-alive",
            b"Trailer: X-Sum",
        ],
        {"x-internal", "keep-alive", "proxy-authenticate", "proxy-connection", "trailer"},
    ),
    (
        "names spread over two Connection headers",
        [b"Connection: X-A", b"X-A: 1", b"Connection: x-b, keep-alive", b"x-B: 2"],
        {"x-a", "x-b", "keep-alive"},
    ),
]


@pytest.mark.parametrize(("lines", "dropped"), cases(HOP_BY_HOP_RESPONSE))
async def test_hop_by_hop_response_headers_do_not_reach_the_client(
    tmp_path: Path, lines: list[bytes], dropped: set[str]
) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(line + b"\r\n" for line in lines)
    answer = head + b"X-Public: yes\r\nContent-Length: 2\r\n\r\nok"
    async with (
        raw_upstream(lambda _: Reply(answer)) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        for _ in range(2):  # and the client connection is kept as usual
            response = await connection.exchange(request_bytes("GET", b"/r"))
            assert response.status == 200
            assert response.body == b"ok"
            assert response.header("X-Public") == "yes"
            names = {name.lower() for name, _ in response.headers}
            assert not names & dropped
            for name, value in response.headers:
                if name.lower() == "connection":
                    assert value.lower() == "keep-alive"


async def test_head_of_a_chunked_resource_claims_no_length(tmp_path: Path) -> None:
    def script(request: Received) -> Reply:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        return Reply(head if request.method == b"HEAD" else head + chunked(b"hello"))

    async with (
        raw_upstream(script) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        response = await connection.exchange(request_bytes("HEAD", b"/c"), "HEAD")
        assert response.status == 200
        after = await connection.exchange(request_bytes("GET", b"/c"))
    assert after.body == b"hello"
    # A HEAD answer may omit the length, never state a wrong one.
    assert response.header("Content-Length") is None


SERVER = [
    ("the gateway names itself when the upstream does not", b"", ["gateway"]),
    ("the upstream's Server header is kept", b"Server: backend/1.0\r\n", ["backend/1.0"]),
]


@pytest.mark.parametrize(("line", "servers"), cases(SERVER))
async def test_server_header(tmp_path: Path, line: bytes, servers: list[str]) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + line + b"Content-Length: 2\r\n\r\nok"
    async with (
        raw_upstream(lambda _: Reply(answer)) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
    ):
        response = await send_raw(gw.port, request_bytes("GET", b"/s"))
    assert [value for name, value in response.headers if name.lower() == "server"] == servers


async def test_trailer_fields_of_a_request_never_reach_the_upstream(tmp_path: Path) -> None:
    # Sent in one piece, the trailer fields are parsed before the forwarder reads the request's
    # headers: they must not join them (RFC 9110 section 6.5.1), forged identity or not.
    trailers = b"X-Checksum: abc\r\nX-User-Id: usr_forged\r\nX-Forwarded-For: 203.0.113.9\r\n"
    body = chunked(b"abc", b"defg", trailers=trailers)
    async with (
        raw_upstream(lambda _: Reply(OK)) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        for _ in range(2):  # and the connection serves the next request as usual
            request = request_bytes("POST", b"/t", b"Transfer-Encoding: chunked", body=body)
            response = await connection.exchange(request)
            assert response.status == 200
    assert len(upstream.received) == 2
    for received in upstream.received:
        seen = (received.head + received.body).lower()
        assert b"x-checksum" not in seen
        assert b"usr_forged" not in seen
        assert b"203.0.113.9" not in seen
        assert received.body == b"abcdefg"


async def test_trailer_fields_count_towards_the_head_size_limit(tmp_path: Path) -> None:
    # 40 fields of 1 KiB: 40 KiB of trailer fields, over the 32 KiB a head may have.
    trailers = b"".join(b"X-Pad-%d: %s\r\n" % (n, b"p" * 1024) for n in range(40))
    body = chunked(b"abc", trailers=trailers)
    async with (
        raw_upstream(lambda _: Reply(OK)) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        request = request_bytes("POST", b"/t", b"Transfer-Encoding: chunked", body=body)
        response = await connection.exchange(request)
    assert response.status == 431
    assert upstream.received == [] or b"x-pad" not in upstream.received[0].head.lower()


async def test_a_trailer_field_that_never_ends_is_refused(tmp_path: Path) -> None:
    # httptools holds a field until its line ends: one unfinished trailer field growing past
    # the 32 KiB a head may have is refused (431), not held for as long as the client sends.
    async with (
        raw_upstream(lambda _: Reply(OK)) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        start = b"3\r\nabc\r\n0\r\nX-Pad: "
        writer = connection.writer
        writer.write(request_bytes("POST", b"/t", b"Transfer-Encoding: chunked", body=start))
        with contextlib.suppress(ConnectionError):  # the gateway may close before the last piece
            for _ in range(16):  # 64 KiB, never a line end
                writer.write(b"p" * 4096)
                await writer.drain()
        response = await asyncio.wait_for(read_response(connection.reader, "POST"), WAIT)
    assert response.status == 431
    assert all(b"x-pad" not in received.head.lower() for received in upstream.received)
