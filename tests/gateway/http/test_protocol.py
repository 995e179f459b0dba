"""The HTTP/1.1 server protocol on a raw socket: what it refuses, how it frames, when it closes.

Every refusal is problem+json (docs/errors.md) and closes the connection; a refused request must
reach no upstream (docs/limits.md: request smuggling gets a clear 4xx and nothing
else).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from tests.gateway.http.conftest import RecordingUpstream
from tests.support import (
    LOOPBACK,
    RawResponse,
    RunningGateway,
    Upstream,
    parse_head,
    parse_responses,
)

WAIT = 15.0  # generous: the machine may be busy; nothing here asserts on durations
SMUGGLED = b"GET /echo/smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "error", "request_id"}


# -- helpers -----------------------------------------------------------------------------------


async def converse(port: int, *pieces: bytes, pause: float = 0.0) -> tuple[bytes, bool]:
    """Send `pieces` (with `pause` seconds between them), then read until the server closes.

    Returns what was received and whether the server closed the connection (False when it
    stayed open and silent for WAIT seconds)."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    received = b""

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            for i, piece in enumerate(pieces):
                if i and pause:
                    await asyncio.sleep(pause)
                if writer.is_closing():
                    return
                writer.write(piece)
                await writer.drain()

    sending = asyncio.create_task(send())
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), WAIT)
            except TimeoutError:
                return received, False
            except ConnectionError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    """One response off a kept-alive connection (1xx ones included, with no body)."""
    response = parse_head(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT))
    status = response.status
    length = response.header("Content-Length")
    if status >= 200 and length is not None:
        response.body = await asyncio.wait_for(reader.readexactly(int(length)), WAIT)
    elif status >= 200 and (response.header("Transfer-Encoding") or "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            response.body += (await reader.readexactly(size + 2))[:size]
            if size == 0:
                break
    return response


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True when the server closes the connection within WAIT seconds without sending more."""
    try:
        extra = await asyncio.wait_for(reader.read(1), WAIT)
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return extra == b""


def assert_problem(response: RawResponse, status: int, error: str = "invalid_request") -> None:
    assert response.status == status
    assert response.header("Content-Type") == "application/problem+json"
    request_id = response.header("X-Request-Id")
    assert request_id
    document = response.json()
    assert set(document) == PROBLEM_FIELDS
    assert document["status"] == status
    assert document["error"] == error
    assert document["request_id"] == request_id
    assert document["type"]
    assert document["title"]
    assert document["detail"]


def echoed_path(response: RawResponse) -> str:
    return str(json.loads(response.body)["path"])


# -- refused heads: smuggling and malformed requests --------------------------------------------

SMUGGLING = [
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 45\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        id="content-length-then-transfer-encoding",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 45\r\n\r\n0\r\n\r\n" + SMUGGLED,
        id="transfer-encoding-then-content-length",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
        b"Content-Length: 45\r\n\r\n" + SMUGGLED,
        id="two-different-content-lengths",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
        + SMUGGLED,
        id="two-equal-content-lengths",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n\r\nabc" + SMUGGLED,
        id="content-length-list",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc" + SMUGGLED,
        id="content-length-with-sign",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"
        + SMUGGLED,
        id="chunked-not-last",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"
        + SMUGGLED,
        id="unknown-transfer-coding",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n" + SMUGGLED,
        id="identity-transfer-coding",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
        + SMUGGLED,
        id="space-before-colon",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n Transfer-Encoding: chunked\r\n"
        b"Content-Length: 45\r\n\r\n" + SMUGGLED,
        id="obs-fold",
    ),
    pytest.param(b"GET /echo HTTP/1.1\nHost: t\n\n" + SMUGGLED, id="bare-lf-everywhere"),
    pytest.param(
        b"GET /echo HTTP/1.1\r\nHost: t\nContent-Length: 45\r\n\r\n" + SMUGGLED,
        id="bare-lf-after-a-header",
    ),
    pytest.param(
        b"GET /echo HTTP/1.1\r\nHost: t\rContent-Length: 45\r\n\r\n" + SMUGGLED,
        id="bare-cr-after-a-header",
    ),
    pytest.param(
        b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Nul: a\x00b\r\n\r\n" + SMUGGLED,
        id="nul-in-a-header-value",
    ),
]

BAD_HEADS = [
    pytest.param(b"GET /echo\r\n\r\n", id="http-0.9-request-line"),
    pytest.param(b"GET /echo HTTP/0.9\r\nHost: t\r\n\r\n", id="http-0.9-version"),
    pytest.param(b"GET /echo HTTP/2.0\r\nHost: t\r\n\r\n", id="http-2.0-version"),
    pytest.param(b"GET /echo HTTP/1.2\r\nHost: t\r\n\r\n", id="http-1.2-version"),
    pytest.param(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", id="http-2-prior-knowledge-preface"),
    pytest.param(
        b"GET /echo RTSP/1.0\r\nHost: t\r\n\r\n",
        id="rtsp-protocol",
    ),
    pytest.param(
        b"SOURCE /echo ICE/1.0\r\nHost: t\r\n\r\n",
        id="ice-protocol",
    ),
    pytest.param(b"GET /echo HTTP/1.1\r\n\r\n", id="http-1.1-without-host"),
    pytest.param(b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", id="two-hosts"),
    pytest.param(
        b"GET /echo HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\n"
        b"Authorization: Bearer y\r\n\r\n",
        id="two-authorizations",
    ),
    pytest.param(
        b"GET /echo HTTP/1.1\r\nHost: a\r\nX-API-Key: x\r\nX-Api-Key: y\r\n\r\n",
        id="two-api-keys",
    ),
    pytest.param(b"GET /echo HTTP/1.1\r\nHo\x7fst: a\r\n\r\n", id="control-char-in-a-name"),
]


@pytest.mark.parametrize("payload", SMUGGLING + BAD_HEADS)
async def test_a_malformed_request_is_refused_and_reaches_no_upstream(
    guarded_gateway: tuple[RunningGateway, RecordingUpstream], payload: bytes
) -> None:
    gw, recorder = guarded_gateway
    data, closed = await converse(gw.port, payload)
    responses = parse_responses(data)
    assert len(responses) == 1, data
    assert_problem(responses[0], 400)
    assert responses[0].header("Connection") == "close"
    assert closed
    assert recorder.connections == 0
    assert bytes(recorder.received) == b""


async def test_the_recording_upstream_does_see_a_valid_request(
    guarded_gateway: tuple[RunningGateway, RecordingUpstream],
) -> None:
    # The control case of the table above: "reaches no upstream" would be vacuous otherwise.
    gw, recorder = guarded_gateway
    data, closed = await converse(
        gw.port,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    )
    assert [response.status for response in parse_responses(data)] == [200]
    assert closed
    assert bytes(recorder.received).startswith(b"POST /echo HTTP/1.1\r\n")
    assert bytes(recorder.received).endswith(b"\r\n\r\nabc")


# -- size and count of the head ----------------------------------------------------------------

BIG = 40 * 1024  # over the default 32 KiB head limit

OVERSIZED_HEADS = [
    pytest.param(
        [
            b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Big: "
            + b"a" * BIG
            + b"\r\n\r\n"
        ],
        id="one-huge-header-in-one-write",
    ),
    pytest.param(
        [b"GET /echo/" + b"a" * BIG + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"],
        id="huge-url-in-one-write",
    ),
    pytest.param(
        [b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: "]
        + [b"a" * 1024] * (BIG // 1024)
        + [b"\r\n\r\n"],
        id="one-huge-header-in-pieces",
    ),
    pytest.param(
        [b"GET /echo/"] + [b"a" * 1024] * (BIG // 1024) + [b" HTTP/1.1\r\nHost: t\r\n\r\n"],
        id="huge-url-in-pieces",
    ),
    pytest.param(
        [
            b"GET /echo HTTP/1.1\r\nHost: t\r\n"
            + b"".join(b"X-H%d: v\r\n" % i for i in range(150))
            + b"\r\n"
        ],
        id="too-many-headers",
    ),
]


@pytest.mark.parametrize("pieces", OVERSIZED_HEADS)
async def test_an_oversized_head_is_refused_with_431(
    guarded_gateway: tuple[RunningGateway, RecordingUpstream], pieces: list[bytes]
) -> None:
    gw, recorder = guarded_gateway
    data, closed = await converse(gw.port, *pieces, pause=0.01 if len(pieces) > 1 else 0.0)
    responses = parse_responses(data)
    assert len(responses) == 1, data[:300]
    assert_problem(responses[0], 431)
    assert closed
    assert bytes(recorder.received) == b""


async def test_a_head_just_under_the_limits_is_served(gateway: RunningGateway) -> None:
    # About 29 KB in 96 headers, under 32 KiB and 100 (the echo upstream takes 8 KiB lines).
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(90))
    payload = b"GET /echo HTTP/1.1\r\nHost: t\r\n" + b"".join(
        b"X-Big-%d: %s\r\n" % (i, b"a" * 7000) for i in range(4)
    )
    data, _ = await converse(gateway.port, payload + headers + b"Connection: close\r\n\r\n")
    assert [response.status for response in parse_responses(data)] == [200]


# -- keep-alive, pipelining, closing -----------------------------------------------------------


async def test_two_requests_on_one_connection_are_both_answered(
    gateway: RunningGateway, upstream: Upstream
) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, gateway.port)
    try:
        answers = []
        for name in (b"first", b"second"):
            writer.write(b"GET /echo/%s HTTP/1.1\r\nHost: t\r\n\r\n" % name)
            answers.append(await read_response(reader))
    finally:
        writer.close()
    assert [response.status for response in answers] == [200, 200]
    assert [echoed_path(response) for response in answers] == ["/echo/first", "/echo/second"]
    assert all(response.header("Connection") is None for response in answers)
    assert len(upstream.seen) == 2


async def test_pipelined_requests_are_answered_in_order(gateway: RunningGateway) -> None:
    # The first is the slowest: answers must still come back in the order asked.
    data, closed = await converse(
        gateway.port,
        b"GET /echo/1 HTTP/1.1\r\nHost: t\r\nX-Test-Delay: 0.5\r\n\r\n"
        b"GET /echo/2 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /echo/3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    responses = parse_responses(data)
    assert [response.status for response in responses] == [200, 200, 200]
    assert [echoed_path(response) for response in responses] == ["/echo/1", "/echo/2", "/echo/3"]
    assert responses[-1].header("Connection") == "close"
    assert closed


async def test_connection_close_is_honoured(gateway: RunningGateway) -> None:
    data, closed = await converse(
        gateway.port, b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    responses = parse_responses(data)
    assert [response.status for response in responses] == [200]
    assert responses[0].header("Connection") == "close"
    assert closed


async def test_http_1_0_without_keep_alive_closes(gateway: RunningGateway) -> None:
    data, closed = await converse(gateway.port, b"GET /echo HTTP/1.0\r\n\r\n")
    responses = parse_responses(data)
    assert [response.status for response in responses] == [200]
    assert responses[0].header("Connection") == "close"
    assert closed


async def test_http_1_0_with_keep_alive_keeps_the_connection(gateway: RunningGateway) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, gateway.port)
    try:
        answers = []
        for name in (b"first", b"second"):
            writer.write(b"GET /echo/%s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % name)
            answers.append(await read_response(reader))
    finally:
        writer.close()
    assert [response.status for response in answers] == [200, 200]
    assert [response.header("Connection") for response in answers] == ["keep-alive"] * 2
    assert [echoed_path(response) for response in answers] == ["/echo/first", "/echo/second"]


# -- timeouts ----------------------------------------------------------------------------------

SLOW_HEADS = [
    pytest.param([b"GET /echo HTTP/1.1\r\nHost: t\r\n"], 0.0, id="half-a-head-then-silence"),
    pytest.param(
        [bytes([byte]) for byte in b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaa"],
        0.25,
        id="a-byte-at-a-time",
    ),
]


@pytest.mark.parametrize(("pieces", "pause"), SLOW_HEADS)
async def test_a_head_that_takes_too_long_is_answered_408(
    impatient_gateway: RunningGateway, upstream: Upstream, pieces: list[bytes], pause: float
) -> None:
    data, closed = await converse(impatient_gateway.port, *pieces, pause=pause)
    responses = parse_responses(data)
    assert len(responses) == 1, data
    assert_problem(responses[0], 408)
    assert closed
    assert upstream.seen == []


async def test_an_idle_new_connection_is_closed(impatient_gateway: RunningGateway) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, impatient_gateway.port)
    try:
        assert await closed_by_server(reader)
    finally:
        writer.close()


async def test_an_idle_kept_alive_connection_is_closed(impatient_gateway: RunningGateway) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, impatient_gateway.port)
    try:
        writer.write(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        response = await read_response(reader)
        assert response.status == 200
        assert response.header("Connection") is None
        assert await closed_by_server(reader)
    finally:
        writer.close()


async def test_a_slow_upstream_is_not_cut_by_the_client_timeouts(
    impatient_gateway: RunningGateway,
) -> None:
    # The upstream takes longer than every client timeout; none of them applies to waiting
    # for it (the route's own timeout does).
    data, closed = await converse(
        impatient_gateway.port,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nX-Test-Delay: 2.5\r\nContent-Length: 3\r\n"
        b"Connection: close\r\n\r\nabc",
    )
    responses = parse_responses(data)
    assert [response.status for response in responses] == [200]
    assert responses[0].json()["body"] == "abc"
    assert closed


STALLED_BODIES = [
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"x" * 10,
        id="small-declared-length",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 100_000,
        id="large-declared-length-streamed",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"a\r\n0123456789\r\n14\r\n01234",
        id="chunked-stops-inside-a-chunk",
    ),
]


@pytest.mark.parametrize("payload", STALLED_BODIES)
async def test_a_body_that_stops_arriving_is_answered_408(
    impatient_gateway: RunningGateway, upstream: Upstream, payload: bytes
) -> None:
    data, closed = await converse(impatient_gateway.port, payload)
    responses = parse_responses(data)
    assert len(responses) == 1, data
    assert_problem(responses[0], 408)
    assert responses[0].header("Connection") == "close"
    assert closed
    assert upstream.seen == []  # the upstream never got a whole request


# -- Expect: 100-continue ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [pytest.param(5, id="small"), pytest.param(100_000, id="large")])
async def test_expect_continue_gets_100_then_the_answer(gateway: RunningGateway, size: int) -> None:
    body = b"b" * size
    reader, writer = await asyncio.open_connection(LOOPBACK, gateway.port)
    try:
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % size
        )
        interim = await read_response(reader)
        assert interim.status == 100
        writer.write(body)
        final = await read_response(reader)
    finally:
        writer.close()
    assert final.status == 200
    document = final.json()
    assert document["body_size"] == size
    assert "expect" not in {name.lower() for name, _ in document["headers"]}


async def test_expect_continue_to_an_unknown_route_gets_404_without_100(
    gateway: RunningGateway, upstream: Upstream
) -> None:
    data, closed = await converse(
        gateway.port,
        b"POST /nowhere HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    assert not data.startswith(b"HTTP/1.1 100")
    assert b" 100 Continue" not in data
    responses = parse_responses(data)
    assert len(responses) == 1
    assert_problem(responses[0], 404, "route_not_found")
    assert closed  # the unread body leaves the connection unusable
    assert upstream.seen == []
