"""The gateway's own endpoints (/live, /health, /ready, /metrics) and its access log (more of
it in test_access_log.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from aiohttp import ClientResponse, ClientSession
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Settings
from tests.support import (
    Upstream,
    auth_settings,
    free_port,
    quiet_settings,
    raw_exchange,
    redis_server,
    routes,
    running_gateway,
)

ECHO = "{name: echo, path: /echo, upstream: echo, auth: none}"
DOWN = "{name: down, path: /down, upstream: down, auth: none}"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "error", "request_id"}


def table(upstream: Upstream, extra: str = "") -> str:
    """/echo to the echo upstream, /down to a port nothing listens on."""
    return routes(
        {"echo": [upstream.url], "down": [f"http://127.0.0.1:{free_port()}"]},
        ECHO,
        DOWN,
        extra=extra,
    )


async def assert_problem(response: ClientResponse, status: int, error: str) -> None:
    assert response.status == status
    assert response.headers["Content-Type"] == "application/problem+json"
    document = json.loads(await response.read())
    assert set(document) == PROBLEM_FIELDS
    assert document["status"] == status
    assert document["error"] == error
    assert document["request_id"] == response.headers["X-Request-Id"]


# -- /health and /ready ------------------------------------------------------------------------


async def test_health_answers_200_json(
    upstream: Upstream, client: ClientSession, tmp_path: Path
) -> None:
    async with (
        running_gateway(table(upstream), tmp_path) as gw,
        client.get(f"{gw.url}/health") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["X-Request-Id"]
        assert await response.json() == {"status": "ok"}
    assert upstream.seen == []


async def test_live_answers_200_json_like_health(
    upstream: Upstream, client: ClientSession, tmp_path: Path
) -> None:
    async with (
        running_gateway(table(upstream), tmp_path) as gw,
        client.get(f"{gw.url}/live") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert await response.json() == {"status": "ok"}
    assert upstream.seen == []


async def test_head_health_answers_without_a_body(upstream: Upstream, tmp_path: Path) -> None:
    async with running_gateway(table(upstream), tmp_path) as gw:
        data = await raw_exchange(
            gw.port, b"HEAD /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b""


async def test_ready_reports_the_hash_of_the_route_table(
    upstream: Upstream, client: ClientSession, tmp_path: Path
) -> None:
    async with running_gateway(table(upstream), tmp_path) as gw:
        expected = hashlib.sha256(gw.config.read_bytes()).hexdigest()
        async with client.get(f"{gw.url}/ready") as response:
            assert response.status == 200
            document = await response.json()
    assert document["status"] == "ready"
    assert document["routes_sha256"] == expected
    assert document["checks"] == {"routes": "ok", "database": "ok"}


async def test_ready_reports_redis_degraded_while_requests_keep_being_served(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    with redis_server(tmp_path) as server:
        settings = quiet_settings(
            auth=auth_settings(tmp_path, redis_url=server.url, redis_prefix="ops:"),
        )
        async with running_gateway(table(upstream), tmp_path, settings) as gw:
            async with client.get(f"{gw.url}/ready") as response:
                assert response.status == 200
                assert (await response.json())["checks"]["redis"] == "ok"
            server.stop()
            async with client.get(f"{gw.url}/ready") as response:
                document = await response.json()
            # Still serving: a readiness probe must keep this replica in its load balancer.
            assert response.status == 200
            assert document["status"] == "degraded"
            assert document["down"] == ["redis"]
            async with client.get(f"{gw.url}/echo/still") as response:
                assert response.status == 200
            server.start()
            async with client.get(f"{gw.url}/ready") as response:
                assert response.status == 200
                assert (await response.json())["status"] == "ready"


async def test_stopping_after_a_redis_restart_always_ends(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    """A SIGTERM after a Redis blip once never ended: redis-py lost the cancellation of the
    revocation subscription's read and the worker waited on it for good (about one stop in
    six under load). Stopping now closes that connection first; twelve rounds, each of which
    must end within the test's timeout."""
    with redis_server(tmp_path) as server:
        settings = quiet_settings(
            auth=auth_settings(tmp_path, redis_url=server.url, redis_prefix="stop:"),
        )
        for _ in range(12):
            async with running_gateway(table(upstream), tmp_path, settings) as gw:
                feed = gw.core.feed
                server.stop()
                async with client.get(f"{gw.url}/ready") as response:
                    assert (await response.json())["status"] == "degraded"
                server.start()
                async with client.get(f"{gw.url}/ready") as response:
                    assert (await response.json())["status"] == "ready"
                async with client.get(f"{gw.url}/echo/after") as response:
                    assert response.status == 200
            assert feed.subscribed is False


async def test_ready_answers_503_while_draining(
    upstream: Upstream, client: ClientSession, tmp_path: Path
) -> None:
    async with running_gateway(table(upstream), tmp_path) as gw:
        assert gw.worker.gateway is not None
        # What Worker.stop() sets first: once draining, load balancers must look elsewhere.
        gw.worker.gateway.operations.draining = True
        async with client.get(f"{gw.url}/ready") as response:
            assert response.status == 503
            document = await response.json()
        async with client.get(f"{gw.url}/health") as health:
            assert health.status == 200
        async with client.get(f"{gw.url}/live") as live:
            assert live.status == 200
    assert document["status"] == "draining"
    assert document["routes_sha256"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", "/health", id="post-health"),
        pytest.param("PUT", "/health", id="put-health"),
        pytest.param("DELETE", "/ready", id="delete-ready"),
        pytest.param("POST", "/metrics", id="post-metrics"),
    ],
)
async def test_other_methods_on_operational_endpoints_are_405(
    upstream: Upstream, client: ClientSession, tmp_path: Path, method: str, path: str
) -> None:
    async with (
        running_gateway(table(upstream), tmp_path) as gw,
        client.request(method, f"{gw.url}{path}", data=b"{}") as response,
    ):
        await assert_problem(response, 405, "method_not_allowed")
        assert response.headers["Allow"] == "GET, HEAD"
    assert upstream.seen == []


# -- /metrics ----------------------------------------------------------------------------------


async def test_metrics_are_prometheus_text_with_the_gateway_metrics(
    upstream: Upstream, client: ClientSession, tmp_path: Path
) -> None:
    async with running_gateway(table(upstream), tmp_path) as gw:
        async with client.get(f"{gw.url}/echo/x") as response:
            assert response.status == 200
        async with client.get(f"{gw.url}/down/x") as response:
            assert response.status == 502
        async with client.get(f"{gw.url}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=")
            text = await response.text()

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    requests = (("method", "GET"), ("route", "echo"), ("status", "200"))
    assert samples[("gateway_requests_total", requests)] == 1
    assert (
        samples[
            ("gateway_requests_total", (("method", "GET"), ("route", "down"), ("status", "502")))
        ]
        == 1
    )
    assert samples[("gateway_request_duration_seconds_count", (("route", "echo"),))] == 1
    assert (
        "gateway_request_duration_seconds_bucket",
        (("le", "+Inf"), ("route", "echo")),
    ) in samples
    upstream_errors = {
        dict(labels)["kind"]: value
        for (name, labels), value in samples.items()
        if name == "gateway_upstream_errors_total" and dict(labels)["upstream"] == "down"
    }
    assert upstream_errors == {"connect": 1}


@pytest.mark.parametrize(
    ("metrics", "status"),
    [
        pytest.param("", 200, id="default-loopback"),
        pytest.param("metrics: {}", 200, id="empty-section-loopback"),
        pytest.param('metrics: {allow: ["127.0.0.1/32"]}', 200, id="this-address"),
        pytest.param('metrics: {allow: ["10.0.0.0/8", "127.0.0.0/8"]}', 200, id="one-of-two"),
        pytest.param('metrics: {allow: ["10.0.0.0/8"]}', 403, id="elsewhere"),
        pytest.param('metrics: {allow: ["::1/128"]}', 403, id="ipv6-loopback-only"),
    ],
)
async def test_metrics_are_served_only_to_allowed_addresses(
    upstream: Upstream, client: ClientSession, tmp_path: Path, metrics: str, status: int
) -> None:
    async with (
        running_gateway(table(upstream, metrics), tmp_path) as gw,
        client.get(f"{gw.url}/metrics") as response,
    ):
        if status == 200:
            assert response.status == 200
            assert "gateway_requests_total" in await response.text()
        else:
            await assert_problem(response, 403, "ip_not_allowed")
            assert "gateway_" not in await response.text()


# -- the access log ----------------------------------------------------------------------------


async def test_access_log_has_one_json_line_a_request(
    upstream: Upstream, client: ClientSession, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    settings = Settings(access_log=str(log), watch_config=False)
    # (method, target, extra headers) -> (status, route, path logged)
    cases = [
        ("GET", "/echo/a?access_token=SECRET-1", {}, 200, "echo", "/echo/a"),
        ("GET", "/echo//b/./c?x=SECRET-2", {}, 200, "echo", "/echo/b/c"),
        ("GET", "/nowhere?api_key=SECRET-3", {}, 404, "@no_route", "/nowhere"),
        (
            "POST",
            "/echo/p?SECRET-4",
            {"X-Request-Id": "client-chosen.id-1"},
            200,
            "echo",
            "/echo/p",
        ),
        ("GET", "/down?SECRET-5", {}, 502, "down", "/down"),
        ("POST", "/health", {}, 405, "@health", "/health"),
    ]
    answered = []
    async with running_gateway(table(upstream), tmp_path, settings) as gw:
        for method, target, headers, status, _, _ in cases:
            async with client.request(
                method,
                f"{gw.url}{target}",
                headers=headers,
                data=b"x" if method == "POST" else None,
            ) as response:
                assert response.status == status
                answered.append(response.headers["X-Request-Id"])
    assert answered[3] == "client-chosen.id-1"

    text = log.read_text()
    assert "SECRET" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert len(entries) == len(cases)
    by_id = {entry["request_id"]: entry for entry in entries}
    for request_id, (method, _, _, status, route, path) in zip(answered, cases, strict=True):
        entry = by_id[request_id]
        assert entry["method"] == method
        assert entry["status"] == status
        assert entry["route"] == route
        assert entry["path"] == path
        assert entry["remote"] == "127.0.0.1"
