"""When upstreams fail (docs/routes.md, Errors, Limits and hostile input): 502 and 504 as
problem+json, failover and passive health, stale kept-alive connections, clients that leave, broken
responses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.proxy.conftest import (
    OK,
    WAIT,
    Received,
    Reply,
    Then,
    raw_client,
    raw_upstream,
    request_bytes,
    send_raw,
    silent_port,
    single_route,
)
from tests.support import LOOPBACK, Upstream, cases, free_port, running_gateway, upstream_server

PROBLEM_JSON = "application/problem+json"


async def upstream_errors(
    client: ClientSession, gateway_url: str, upstream: str, kind: str | None = None
) -> float:
    """gateway_upstream_errors_total for `upstream` (and `kind`, else all), from GET /metrics."""
    async with client.get(f"{gateway_url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_upstream_errors_total"
        and sample.labels["upstream"] == upstream
        and kind in (None, sample.labels["kind"])
    )


# -- 502 and 504 -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("POST", b'{"a": 1}')])
async def test_refused_target_is_502_upstream_unavailable(
    client: ClientSession, tmp_path: Path, method: str, body: bytes | None
) -> None:
    port = free_port()
    async with (
        running_gateway(single_route([f"http://{LOOPBACK}:{port}"]), tmp_path) as gw,
        client.request(method, f"{gw.url}/x", data=body) as response,
    ):
        problem = await response.json(content_type=None)
    assert response.status == 502
    assert response.headers["Content-Type"] == PROBLEM_JSON
    assert problem["error"] == "upstream_unavailable"
    assert problem["status"] == 502
    assert problem["request_id"] == response.headers["X-Request-Id"]
    for secret in (LOOPBACK, str(port), "errno", "refused"):
        assert secret not in problem["detail"].lower()


TIMEOUTS = [
    ("the route's timeout", {}, "timeout: 1s"),
    ("the upstream's timeout", {"timeout": "1s"}, ""),
]


@pytest.mark.parametrize(("upstream_options", "route"), cases(TIMEOUTS))
async def test_slow_upstream_is_504_upstream_timeout(
    client: ClientSession, tmp_path: Path, upstream_options: dict[str, str], route: str
) -> None:
    async with (
        upstream_server() as upstream,
        running_gateway(
            single_route([upstream.url], route=route, **upstream_options), tmp_path
        ) as gw,
        client.get(f"{gw.url}/slow", headers={"X-Test-Delay": "30"}) as response,
    ):
        problem = await response.json(content_type=None)
    assert response.status == 504
    assert response.headers["Content-Type"] == PROBLEM_JSON
    assert problem["error"] == "upstream_timeout"
    assert problem["request_id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize("alone", [True, False], ids=["alone: 504", "with a live target: failover"])
async def test_target_that_does_not_accept_in_time(
    client: ClientSession, upstream: Upstream, tmp_path: Path, alone: bool
) -> None:
    with silent_port() as port:
        targets = [f"http://{LOOPBACK}:{port}"] + ([] if alone else [upstream.url])
        async with (
            running_gateway(single_route(targets, connect_timeout="1s"), tmp_path) as gw,
            client.get(f"{gw.url}/c") as response,
        ):
            document = await response.json(content_type=None)
            errors = await upstream_errors(client, gw.url, "up", "connect_timeout")
    assert errors == 1
    if alone:
        assert response.status == 504
        assert document["error"] == "upstream_timeout"
    else:
        assert response.status == 200
        assert document["path"] == "/c"


# -- balancing and passive health --------------------------------------------------------------


async def test_round_robin_across_live_targets(client: ClientSession, tmp_path: Path) -> None:
    async with (
        upstream_server() as first,
        upstream_server() as second,
        running_gateway(single_route([first.url, second.url]), tmp_path) as gw,
    ):
        ports = []
        for _ in range(8):
            async with client.get(f"{gw.url}/rr") as response:
                assert response.status == 200
                ports.append((await response.json())["port"])
    assert {ports[0], ports[1]} == {first.port, second.port}
    assert ports == ports[:2] * 4  # strictly alternating


async def test_dead_target_fails_over_is_taken_out_and_tried_again(
    client: ClientSession, tmp_path: Path
) -> None:
    fail_timeout = 3.0
    dead = f"http://{LOOPBACK}:{free_port()}"
    async with upstream_server() as live:
        table = single_route([live.url, dead], max_fails="2", fail_timeout=f"{fail_timeout:g}s")
        async with running_gateway(table, tmp_path) as gw:

            async def batch(count: int) -> None:
                for _ in range(count):
                    async with client.get(f"{gw.url}/f") as response:
                        assert response.status == 200  # a refused target never shows

            await batch(6)
            assert await upstream_errors(client, gw.url, "up") == 2  # max_fails, then out
            await batch(10)
            assert await upstream_errors(client, gw.url, "up") == 2  # not tried while out

            await asyncio.sleep(fail_timeout + 0.5)
            await batch(6)
            # Back in after fail_timeout: tried once more, and one failure takes it out again.
            assert await upstream_errors(client, gw.url, "up") == 3
    assert len(live.seen) == 22


# -- stale connections and broken exchanges ----------------------------------------------------

SMALL = b'{"a": 1}'
STREAMED = b"s" * 100_000  # larger than what the forwarder reads ahead: sent as it arrives

DROPPED = [
    # (description, method, body, on a kept-alive connection, how the upstream drops the
    #  request, status, times the upstream received the request)
    ("GET on a stale kept-alive connection (FIN) is retried", "GET", b"", True, "close", 200, 2),
    ("GET on a stale kept-alive connection (RST) is retried", "GET", b"", True, "reset", 200, 2),
    ("PUT on a stale kept-alive connection is retried", "PUT", SMALL, True, "close", 200, 2),
    ("DELETE on a stale kept-alive connection is retried", "DELETE", b"", True, "reset", 200, 2),
    ("POST on a stale kept-alive connection is not retried", "POST", SMALL, True, "close", 502, 1),
    (
        "PATCH on a stale kept-alive connection is not retried",
        "PATCH",
        SMALL,
        True,
        "reset",
        502,
        1,
    ),
    ("a streamed PUT body cannot be replayed", "PUT", STREAMED, True, "close", 502, 1),
    ("POST reset on a new connection is not retried", "POST", SMALL, False, "reset", 502, 1),
    ("GET closed on a new connection is the target's fault", "GET", b"", False, "close", 502, 1),
]


@pytest.mark.parametrize(("method", "body", "reused", "drop", "status", "times"), cases(DROPPED))
async def test_request_dropped_without_an_answer(
    tmp_path: Path, method: str, body: bytes, reused: bool, drop: Then, status: int, times: int
) -> None:
    """The upstream reads the request and closes or resets the connection without a word: on
    a kept-alive connection that is a stale connection, retried when the request is
    idempotent and its body can be sent again; otherwise 502, and never sent twice."""
    dropped_index = 1 if reused else 0

    def script(request: Received) -> Reply:
        if request.target == b"/victim" and request.index == dropped_index:
            return Reply(then=drop)
        return Reply(OK)

    framing = [b"Content-Length: %d" % len(body)] if body else []
    async with (
        raw_upstream(script) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        if reused:
            assert (await connection.exchange(request_bytes("GET", b"/warm"))).status == 200
        data = request_bytes(method, b"/victim", *framing, body=body)
        response = await connection.exchange(data)
        assert response.status == status
        if status == 502:
            problem = response.json()
            assert problem["error"] == "upstream_unavailable"
            assert problem["request_id"] == response.header("X-Request-Id")
        assert upstream.count(b"/victim") == times
        assert all(r.body == body for r in upstream.received if r.target == b"/victim")
        # The client connection outlives the upstream's failure.
        assert (await connection.exchange(request_bytes("GET", b"/after"))).status == 200


FAILOVER = [
    ("GET", "GET", b""),
    ("POST", "POST", SMALL),
    ("POST with a streamed body", "POST", STREAMED),
    ("PATCH", "PATCH", SMALL),
]


@pytest.mark.parametrize(("method", "body"), cases(FAILOVER))
async def test_refused_connection_fails_over_whatever_the_method(
    tmp_path: Path, method: str, body: bytes
) -> None:
    """Nothing was sent to a target that refused the connection: any request may go on."""
    dead = f"http://{LOOPBACK}:{free_port()}"
    async with (
        raw_upstream(lambda _: Reply(OK)) as upstream,
        running_gateway(single_route([dead, upstream.url]), tmp_path) as gw,
    ):
        framing = [b"Content-Length: %d" % len(body)] if body else []
        response = await send_raw(gw.port, request_bytes(method, b"/over", *framing, body=body))
    assert response.status == 200
    assert [(r.method, r.body) for r in upstream.received] == [(method.encode(), body)]


async def test_upstream_closing_after_every_response_keeps_working(tmp_path: Path) -> None:
    """It answers each request, then closes without saying so (no `Connection: close`)."""
    async with (
        raw_upstream(lambda _: Reply(OK, then="close")) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        for _ in range(5):
            response = await connection.exchange(request_bytes("GET", b"/again"))
            assert response.status == 200
            assert response.body == b"ok"
    assert upstream.count(b"/again") == 5


MALFORMED = [
    ("not HTTP at all", b"hello there\r\n\r\n"),
    ("a status that is not a number", b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"),
    ("a header line without a colon", b"HTTP/1.1 200 OK\r\nbroken\r\nContent-Length: 2\r\n\r\nok"),
    (
        "two different lengths",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
    ),
    ("a bad chunk size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
]


@pytest.mark.parametrize("answer", cases(MALFORMED))
async def test_malformed_response_is_502(tmp_path: Path, answer: bytes) -> None:
    async with (
        raw_upstream(lambda _: Reply(answer, then="hang")) as upstream,
        running_gateway(single_route([upstream.url]), tmp_path) as gw,
    ):
        response = await send_raw(gw.port, request_bytes("GET", b"/m"))
    assert response.status == 502
    assert response.json()["error"] == "upstream_unavailable"


CUT = [
    (
        "fewer bytes than its Content-Length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000,
        "close",
    ),
    (
        "a chunked body without its last chunk",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"x" * 1000 + b"\r\n",
        "close",
    ),
    (
        "a body larger than the flow-control window, cut",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4000000\r\n\r\n" + b"x" * 1_000_000,
        "reset",
    ),
    (
        "a body that stalls past the timeout",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000,
        "hang",
    ),
]


@pytest.mark.parametrize(("answer", "then"), cases(CUT))
async def test_body_cut_midway_reaches_the_client_cut(
    tmp_path: Path, answer: bytes, then: Then
) -> None:
    """Once the head has gone, only a cut connection can tell the client the body is short."""
    async with (
        raw_upstream(lambda _: Reply(answer, then=then)) as upstream,
        running_gateway(single_route([upstream.url], timeout="1s"), tmp_path) as gw,
        raw_client(gw.port) as connection,
    ):
        connection.writer.write(request_bytes("GET", b"/cut"))
        received = await connection.rest()  # until the gateway closes the connection
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    if b"Transfer-Encoding: chunked" in head:
        assert not body.endswith(b"0\r\n\r\n")
    else:
        declared = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        assert len(body) < declared


# -- clients that leave ------------------------------------------------------------------------


DISCONNECTS = [
    ("while waiting for the answer", request_bytes("GET", b"/wait")),
    (
        "in the middle of a streamed upload",
        request_bytes(
            "POST", b"/upload", b"Transfer-Encoding: chunked", body=b"400\r\n" + b"x" * 1024
        ),
    ),
    ("in the middle of an endless download", request_bytes("GET", b"/download")),
]


@pytest.mark.parametrize("data", cases(DISCONNECTS))
async def test_client_disconnect_frees_the_upstream_request(tmp_path: Path, data: bytes) -> None:
    """The gateway drops its upstream connection: the upstream's handler is cancelled (or, in
    the middle of writing, finds its connection gone)."""
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        try:
            if request.path == "/download":
                await response.prepare(request)
                while True:
                    await response.write(b"z" * 65536)
                    started.set()
            started.set()
            await request.read()  # an upload that never ends
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped.set()
            raise
        except ConnectionResetError:  # writing to the connection the gateway dropped
            stopped.set()
        return response

    async with (
        upstream_server(slow) as upstream,
        running_gateway(single_route([upstream.url], timeout="1h"), tmp_path) as gw,
    ):
        async with raw_client(gw.port) as connection:
            connection.writer.write(data)
            await asyncio.wait_for(started.wait(), WAIT)
        await asyncio.wait_for(stopped.wait(), WAIT)
