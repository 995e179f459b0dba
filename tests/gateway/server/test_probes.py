"""The probes of a `gateway serve` process (docs/operations/running.md): /live while the process
answers, /ready staying 200 (`degraded`) when only Redis is down, so that a readiness probe
does not pull every replica out of its load balancer on a Redis blip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support import GatewayProcess, RawResponse, raw_request, redis_server

Launch = Callable[..., GatewayProcess]


async def get(port: int, path: str) -> RawResponse:
    request = b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path.encode()
    return await raw_request(port, request, timeout=20)


async def test_live_and_ready_with_redis_up_then_down(launch: Launch, tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis:
        gateway = launch(
            "version: 1\nroutes: []\n",
            workers=2,
            env={"GATEWAY_REDIS_URL": redis.url, "GATEWAY_REDIS_PREFIX": "probes:"},
        )
        live = await get(gateway.port, "/live")
        assert (live.status, live.json()) == (200, {"status": "ok"})
        ready = await get(gateway.port, "/ready")
        assert ready.status == 200
        assert ready.json()["status"] == "ready"

        redis.stop()
        ready = await get(gateway.port, "/ready")
        document = ready.json()
        assert ready.status == 200
        assert document["status"] == "degraded"
        assert document["down"] == ["redis"]
        assert document["checks"] == {"routes": "ok", "database": "ok", "redis": "unreachable"}
        live = await get(gateway.port, "/live")
        assert live.status == 200
    assert gateway.stop() == 0
    assert "Traceback" not in gateway.logs()
