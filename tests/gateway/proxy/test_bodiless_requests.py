"""Bodiless requests on a kept-alive upstream connection (once served by a callback path of their
own, removed as not worth a second path; bench/README.md): the connection is reused, and what
has to wait (streaming, retries, timeouts, a client leaving) gives the same answers. Every test
here first warms an upstream connection, so that the request under test finds one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.proxy.conftest import (
    OK,
    WAIT,
    RawClient,
    Received,
    Reply,
    Then,
    raw_client,
    raw_upstream,
    read_response,
    request_bytes,
    single_route,
)
from tests.support import RawResponse, cases, running_gateway, upstream_server

MiB = 1024 * 1024


async def warm(connection: RawClient) -> None:
    """One request that leaves a kept-alive connection in the gateway's upstream pool."""
    response = await connection.exchange(request_bytes("GET", b"/warm"))
    assert response.status == 200


@asynccontextmanager
async def warmed(upstream_url: str, tmp_path: Path, **options: str) -> AsyncIterator[RawClient]:
    """A client connection to the gateway with one route to the upstream (`options` as for
    `single_route`), whose first request has warmed an upstream connection for the next."""
    async with (
        running_gateway(single_route([upstream_url], **options), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        await warm(connection)
        yield connection


async def after(connection: RawClient) -> RawResponse:
    """The next request on the same client connection: is it still served?"""
    return await connection.exchange(request_bytes("GET", b"/after"))


def on_one_connection(received: list[Received]) -> bool:
    return len({request.connection for request in received}) == 1


async def test_many_requests_share_one_upstream_connection(tmp_path: Path) -> None:
    async with (
        raw_upstream(lambda r: Reply(OK)) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        ids = set()
        for index in range(50):
            response = await connection.exchange(request_bytes("GET", b"/n/%d" % index))
            assert response.status == 200
            assert response.body == b"ok"
            ids.add(response.header("X-Request-Id"))
        assert len(ids) == 50
        assert [r.target for r in upstream.received] == [b"/n/%d" % i for i in range(50)]
        assert on_one_connection(upstream.received)
        # Each request carried its own id to the upstream.
        sent_ids = {
            line.split(b": ", 1)[1].decode()
            for r in upstream.received
            for line in r.head.split(b"\r\n")
            if line.lower().startswith(b"x-request-id:")
        }
        assert sent_ids == ids


async def test_pipelined_requests_after_a_bodiless_request_keep_their_order(
    tmp_path: Path,
) -> None:
    """A batch of pipelined requests, one with a body among them, on one connection: answers
    come back in the order asked."""

    def script(request: Received) -> Reply:
        target = request.target
        return Reply(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(target), target))

    async with raw_upstream(script) as upstream, warmed(upstream.url, tmp_path) as connection:
        batch = [
            request_bytes("GET", b"/p/1"),
            request_bytes("POST", b"/p/2", b"Content-Length: 3", body=b"abc"),
            request_bytes("GET", b"/p/3"),
            request_bytes("DELETE", b"/p/4"),
            request_bytes("GET", b"/p/5"),
        ]
        connection.writer.write(b"".join(batch))
        bodies = [
            (await asyncio.wait_for(read_response(connection.reader), WAIT)).body for _ in batch
        ]
        assert bodies == [b"/p/1", b"/p/2", b"/p/3", b"/p/4", b"/p/5"]
        # And the connection still serves afterwards.
        response = await connection.exchange(request_bytes("GET", b"/p/6"))
        assert response.body == b"/p/6"
    assert [r.body for r in upstream.received if r.target == b"/p/2"] == [b"abc"]


STREAMED = [
    ("a length over the buffered size", b"Content-Length: %d\r\n" % (3 * MiB), 3 * MiB),
    ("chunked", b"Transfer-Encoding: chunked\r\n", 3 * MiB),
    ("a length just under the buffered size", b"Content-Length: %d\r\n" % 65536, 65536),
]


@pytest.mark.parametrize(("framing", "size"), cases(STREAMED))
async def test_large_and_unsized_answers_come_through_whole(
    tmp_path: Path, framing: bytes, size: int
) -> None:
    body = bytes(range(256)) * (size // 256)

    def script(request: Received) -> Reply:
        if request.target != b"/big":
            return Reply(OK)
        if framing.startswith(b"Transfer-Encoding"):
            chunks = b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + 100_000]), body[i : i + 100_000])
                for i in range(0, len(body), 100_000)
            )
            return Reply(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n" + chunks + b"0\r\n\r\n")
        return Reply(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n" + body)

    async with raw_upstream(script) as upstream, warmed(upstream.url, tmp_path) as connection:
        response = await connection.exchange(request_bytes("GET", b"/big"))
        assert response.status == 200
        assert response.body == body
        assert (await after(connection)).body == b"ok"
        assert on_one_connection(upstream.received)


async def test_a_short_answer_in_pieces_is_answered_whole(tmp_path: Path) -> None:
    """A short answer whose body arrives in several reads is held until its end (the listener
    is not woken for each piece) and written whole, on a connection kept for the next one."""
    pieces = [b"first-", b"second-", b"third"]

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path != "/pieces":
            return web.Response(text="ok")
        response = web.StreamResponse()
        response.content_length = sum(len(piece) for piece in pieces)
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0.05)  # each piece its own read at the gateway
        await response.write_eof()
        return response

    async with upstream_server(handler) as upstream, warmed(upstream.url, tmp_path) as connection:
        response = await connection.exchange(request_bytes("GET", b"/pieces"))
        assert response.status == 200
        assert response.body == b"".join(pieces)
        assert (await after(connection)).body == b"ok"


async def test_head_keeps_the_length_and_the_connection(tmp_path: Path) -> None:
    def script(request: Received) -> Reply:
        if request.method == b"HEAD":
            return Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        return Reply(OK)

    async with raw_upstream(script) as upstream, warmed(upstream.url, tmp_path) as connection:
        response = await connection.exchange(request_bytes("HEAD", b"/h"), method="HEAD")
        assert response.status == 200
        assert response.header("Content-Length") == "1234"
        after = await connection.exchange(request_bytes("GET", b"/after"))
        assert after.body == b"ok"
        assert on_one_connection(upstream.received)


async def test_a_slow_upstream_is_504_then_the_client_is_served_again(tmp_path: Path) -> None:
    def script(request: Received) -> Reply:
        return Reply(then="hang") if request.target == b"/slow" else Reply(OK)

    async with (
        raw_upstream(script) as upstream,
        warmed(upstream.url, tmp_path, timeout="1s") as connection,
    ):
        response = await connection.exchange(request_bytes("GET", b"/slow"))
        assert response.status == 504
        assert response.json()["error"] == "upstream_timeout"
        assert (await after(connection)).status == 200
        # The hung connection was dropped, not reused: /after went on a new one.
        assert upstream.received[-1].connection != upstream.received[0].connection


@pytest.mark.parametrize(
    "answer",
    [
        b"hello there\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    ],
    ids=["not HTTP", "two lengths"],
)
async def test_a_malformed_answer_is_502(tmp_path: Path, answer: bytes) -> None:
    def script(request: Received) -> Reply:
        return Reply(answer, then="hang") if request.target == b"/m" else Reply(OK)

    async with raw_upstream(script) as upstream, warmed(upstream.url, tmp_path) as connection:
        response = await connection.exchange(request_bytes("GET", b"/m"))
        assert response.status == 502
        assert response.json()["error"] == "upstream_unavailable"
        assert (await after(connection)).status == 200


@pytest.mark.parametrize(("method", "status", "times"), [("GET", 200, 2), ("POST", 502, 1)])
async def test_a_connection_closed_before_answering(
    tmp_path: Path, method: str, status: int, times: int
) -> None:
    """A kept-alive connection the upstream closes on reading the request: sent again on a new
    connection when the method allows it, else 502 (never sent twice)."""

    def script(request: Received) -> Reply:
        if request.target == b"/victim" and request.index == 1:
            return Reply(then="close")
        return Reply(OK)

    async with raw_upstream(script) as upstream, warmed(upstream.url, tmp_path) as connection:
        response = await connection.exchange(request_bytes(method, b"/victim"))
        assert response.status == status
        assert upstream.count(b"/victim") == times
        assert (await after(connection)).status == 200


@pytest.mark.parametrize("then", ["close", "reset"])
async def test_a_short_answer_cut_before_its_end_is_502(tmp_path: Path, then: Then) -> None:
    """A short answer is held until it is whole: cut before its end, nothing of it has reached
    the client, which gets a 502 instead of a truncated body, and keeps its connection."""
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 1000

    def script(request: Received) -> Reply:
        return Reply(cut, then=then) if request.target == b"/cut" else Reply(OK)

    async with raw_upstream(script) as upstream, warmed(upstream.url, tmp_path) as connection:
        response = await connection.exchange(request_bytes("GET", b"/cut"))
        assert response.status == 502
        assert response.json()["error"] == "upstream_unavailable"
        assert upstream.count(b"/cut") == 1  # an answer had begun: never sent twice
        assert (await after(connection)).status == 200


async def test_a_client_that_leaves_frees_the_upstream_request(
    client: ClientSession, tmp_path: Path
) -> None:
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/wait":
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                stopped.set()
                raise
        return web.Response(text="ok")

    async with (
        upstream_server(handler) as upstream,
        running_gateway(single_route([upstream.url], timeout="1h"), tmp_path) as gw,
    ):
        async with raw_client(gw.port) as connection:
            await warm(connection)
            connection.writer.write(request_bytes("GET", b"/wait"))
            await asyncio.wait_for(started.wait(), WAIT)
        await asyncio.wait_for(stopped.wait(), WAIT)
        async with client.get(f"{gw.url}/metrics") as response:
            text = await response.text()
    abandoned = [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_requests_total" and sample.labels["status"] == "499"
    ]
    assert [(s.labels["route"], s.value) for s in abandoned] == [("up", 1.0)]


async def test_connection_close_is_honoured(tmp_path: Path) -> None:
    async with (
        raw_upstream(lambda r: Reply(OK)) as upstream,
        warmed(upstream.url, tmp_path) as connection,
    ):
        connection.writer.write(request_bytes("GET", b"/last", b"Connection: close"))
        received = await connection.rest()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nConnection: close\r\n" in received
    assert received.endswith(b"\r\n\r\nok")
    assert on_one_connection(upstream.received)


async def test_answers_given_at_once_keep_the_connection(tmp_path: Path) -> None:
    """A 404 and a /health answer come from the pipeline itself; the connection goes on."""
    async with (
        raw_upstream(lambda r: Reply(OK)) as upstream,
        warmed(upstream.url, tmp_path, route="methods: [GET]") as connection,
    ):
        refused = await connection.exchange(request_bytes("PUT", b"/x"))
        assert refused.status == 405
        assert refused.header("Content-Type") == "application/problem+json"
        health = await connection.exchange(request_bytes("GET", b"/health"))
        assert health.status == 200
        assert (await after(connection)).status == 200
    assert [r.target for r in upstream.received] == [b"/warm", b"/after"]


async def test_a_drain_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/slow":
            arrived.set()
            await release.wait()
        return web.Response(text="done")

    async with (
        upstream_server(handler) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        await warm(connection)
        connection.writer.write(request_bytes("GET", b"/slow"))
        await asyncio.wait_for(arrived.wait(), WAIT)
        stopping = asyncio.create_task(gw.worker.stop())
        await asyncio.sleep(0.2)
        release.set()
        received = await connection.rest()
        await stopping
    assert received.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nConnection: close\r\n" in received
    assert received.endswith(b"done")
