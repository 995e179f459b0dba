"""The auth metrics (docs/operations/observability.md) through /metrics: cache look-ups by
result (counters: a hit rate is computed from them in Prometheus), access token validations by
result and their duration, API key results."""

from __future__ import annotations

from pathlib import Path

from aiohttp import ClientSession
from prometheus_client.parser import text_string_to_metric_families

from auth_core.service import CallInfo
from tests.support import Upstream, routes, running_gateway

CALL = CallInfo()
PASSWORD = "correct horse battery"
ROUTES = (
    "{name: partner, path: /partner, upstream: echo, auth: api_key}",
    "{name: private, path: /private, upstream: echo, auth: jwt}",
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_cache_and_validation_metrics(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    async with running_gateway(routes({"echo": [upstream.url]}, *ROUTES), tmp_path) as gw:
        core = gw.core
        tenant = await core.tenants.create("Acme", [], ["127.0.0.0/8"], None, CALL)
        _, key = await core.keys.create(tenant.id, actor_id=None, call=CALL)
        await core.accounts.create("ada@example.com", PASSWORD, verified=True)
        token = (await core.sessions.login("ada@example.com", PASSWORD, CALL)).access_token
        for _ in range(3):
            async with client.get(
                f"{gw.url}/private", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 200
            async with client.get(f"{gw.url}/partner", headers={"X-API-Key": key}) as response:
                assert response.status == 200
        async with client.get(
            f"{gw.url}/private", headers={"Authorization": "Bearer not-a-token"}
        ) as response:
            assert response.status == 401
        async with client.get(f"{gw.url}/metrics") as response:
            found = samples(await response.text())

    def value(name: str, **labels: str) -> float:
        return found.get((name, tuple(sorted(labels.items()))), 0.0)

    lookups = "gateway_auth_cache_lookups_total"
    assert value(lookups, cache="token", result="miss") == 2  # the first use, and the bad one
    assert value(lookups, cache="token", result="hit") == 2
    assert value(lookups, cache="credential", result="miss") == 1
    assert value(lookups, cache="credential", result="hit") == 2
    # No ratio gauge: a rate cannot be summed over workers; the counters can.
    assert not [name for name, _ in found if "hit_rate" in name]
    assert value("gateway_token_validations_total", result="ok") == 3
    assert value("gateway_token_validations_total", result="invalid_token") == 1
    assert value("gateway_token_validation_duration_seconds_count") == 2
    assert value("gateway_api_key_validations_total", result="ok") == 3
    assert value("gateway_session_creations_total") == 1
