"""deploy/observability: the Prometheus alert rules (checked and unit-tested by promtool), the
Prometheus configuration, the Grafana dashboard, and a real scrape of a gateway that served
traffic, which promtool lints and which holds every metric the dashboard and the alerts use."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from aiohttp import ClientSession
from prometheus_client.parser import text_string_to_metric_families

from auth_core.service import CallInfo
from gateway.config import Settings
from metrics.catalog import Catalog
from tests.support import (
    Upstream,
    auth_settings,
    eventually,
    free_port,
    routes,
    two_gateways,
)

ROOT = Path(__file__).resolve().parent.parent
OBSERVABILITY = ROOT / "deploy" / "observability"
CALL = CallInfo()
PASSWORD = "correct horse battery staple"
# Metric names in PromQL: every metric of the gateway begins with one of these. `up` is
# Prometheus's own (a scrape that failed), not the gateway's.
METRIC = re.compile(r"\b(?:gateway|process)_[a-z0-9_]+\b")
HISTOGRAM_PARTS = ("_bucket", "_count", "_sum")


@pytest.fixture
def promtool() -> str:
    """promtool (Debian's `prometheus` package), or a skip; under CI (.ci/run installs it) a
    failure."""
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def run(promtool: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [promtool, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=OBSERVABILITY,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def dashboard() -> dict[str, object]:
    loaded = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    assert isinstance(loaded, dict)
    return loaded


def dashboard_exprs() -> list[str]:
    panels = dashboard()["panels"]
    assert isinstance(panels, list)
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def alert_exprs() -> list[str]:
    text = (OBSERVABILITY / "alerts.yaml").read_text()
    rules = [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]
    return [rule["expr"] for rule in rules]


def used_metrics() -> set[str]:
    """Every metric the dashboard and the alerts query, histograms by their family name."""
    names = set()
    for expr in [*dashboard_exprs(), *alert_exprs()]:
        for name in METRIC.findall(expr):
            for part in HISTOGRAM_PARTS:
                if name.endswith(part):
                    name = name.removesuffix(part)
            names.add(name)
    return names


# -- the files, checked by promtool ------------------------------------------------------------


def test_the_alert_rules_pass_promtool_check_rules(promtool: str) -> None:
    assert "SUCCESS: 11 rules found" in run(promtool, "check", "rules", "alerts.yaml")


def test_the_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    # alerts-test.yaml: each alert fires on the series that should fire it, with its labels and
    # annotations, and not on the ones beside them that should not.
    assert "SUCCESS" in run(promtool, "test", "rules", "alerts-test.yaml")


def test_the_prometheus_configuration_passes_promtool(promtool: str) -> None:
    output = run(promtool, "check", "config", "prometheus.yml")
    assert "SUCCESS: 1 rule files found" in output


def test_the_alerts_cover_the_signals_that_matter() -> None:
    exprs = "\n".join(alert_exprs())
    for signal in (
        'status=~"5.."',  # error rate
        "gateway_request_duration_seconds_bucket",  # p99 latency
        "gateway_auth_failures_total",  # auth failures by reason
        "gateway_auth_cache_lookups_total",  # cache hit rate
        "gateway_revocation_lag_seconds_bucket",  # revocation lag
        "gateway_upstream_errors_total",  # upstream health
        "gateway_upstream_duration_seconds_bucket",
    ):
        assert signal in exprs, signal


def test_the_dashboard_is_grafana_json_on_its_grid() -> None:
    board = dashboard()
    assert board["uid"] == "gateway-overview"
    panels = board["panels"]
    assert isinstance(panels, list)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    exprs = "\n".join(dashboard_exprs())
    for signal in (
        'status=~"5.."',
        "histogram_quantile(0.99, sum by (le) (rate(gateway_request_duration_seconds_bucket",
        "sum by (reason) (rate(gateway_auth_failures_total",
        "gateway_auth_cache_lookups_total",
        "gateway_revocation_lag_seconds_bucket",
        "gateway_upstream_errors_total",
        "gateway_upstream_duration_seconds_bucket",
    ):
        assert signal in exprs, signal


# -- a real scrape -----------------------------------------------------------------------------


async def test_a_real_scrape_passes_promtool_and_holds_every_metric_queried(
    promtool: str, tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    table = routes(
        {"echo": [upstream.url], "down": [f"http://127.0.0.1:{free_port()}"]},
        "{name: private, path: /private, upstream: echo, auth: jwt}",
        "{name: partner, path: /partner, upstream: echo, auth: api_key}",
        "{name: down, path: /down, upstream: down, auth: none}",
    )
    # Two replicas on one database: a key revoked through the first reaches the second by its
    # polling, which is what the revocation lag measures.
    settings = Settings(access_log="off", watch_config=False)
    settings = dataclasses.replace(settings, auth=auth_settings(tmp_path))
    async with two_gateways(table, tmp_path, settings) as (first, second):
        core = second.core
        tenant = await core.tenants.create("Acme", [], ["127.0.0.0/8"], None, CALL)
        key, secret = await core.keys.create(tenant.id, actor_id=None, call=CALL)
        await core.accounts.create("ada@example.com", PASSWORD, verified=True)
        token = (await core.sessions.login("ada@example.com", PASSWORD, CALL)).access_token
        asks = [
            ("/private/a", {"Authorization": f"Bearer {token}"}, 200),
            ("/private/a", {"Authorization": f"Bearer {token}"}, 200),
            ("/private/a", {"Authorization": "Bearer not-a-token"}, 401),
            ("/partner/b", {"X-API-Key": secret}, 200),
            ("/down/c", {}, 502),
            ("/live", {}, 200),
            ("/ready", {}, 200),
            ("/nowhere", {}, 404),
        ]
        for path, headers, status in asks:
            async with client.get(f"{second.url}{path}", headers=headers) as response:
                assert response.status == status, path
        await first.core.keys.revoke(key.id, tenant_id=None, actor_id=None, call=CALL)
        await eventually(lambda: bool(second.core.revoked.lags), "the revocation read")
        async with client.get(f"{second.url}/metrics") as response:
            assert response.status == 200
            text = await response.text()

    # promtool's lint of the exposition (names, units, counter suffixes, help texts).
    run(promtool, "check", "metrics", stdin=text)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    declared = {
        family.name + ("_total" if family.type == "counter" else "") for family in families.values()
    }
    used = used_metrics()
    assert used, "no metric found in the dashboard and alerts"
    assert not used - declared, f"queried but not in a real scrape: {sorted(used - declared)}"
    samples = {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in families.values()
        for sample in family.samples
    }
    names = {name for name, _ in samples}
    # The six signals have data after this traffic, not only a declaration.
    for name in (
        "gateway_requests_total",
        "gateway_request_duration_seconds_bucket",
        "gateway_auth_failures_total",
        "gateway_auth_cache_lookups_total",
        "gateway_revocation_lag_seconds_bucket",
        "gateway_upstream_errors_total",
        "gateway_upstream_duration_seconds_bucket",
        "gateway_build_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ):
        assert name in names, name
    assert re.search(r"^gateway_revocation_lag_seconds_count 1\.0$", text, re.MULTILINE)
    routes_seen = {
        dict(labels)["route"] for name, labels in samples if name == "gateway_requests_total"
    }
    assert routes_seen == {"private", "partner", "down", "@live", "@ready", "@no_route"}
    assert (
        "gateway_upstream_duration_seconds_count",
        (("route", "private"), ("target", f"127.0.0.1:{upstream.port}"), ("upstream", "echo")),
    ) in samples
    assert not [name for name in names if name.startswith(("auth_", "socket_"))]


# -- the documentation -------------------------------------------------------------------------

DOC = ROOT / "docs" / "operations" / "observability.md"


def test_every_metric_the_gateway_exports_is_documented() -> None:
    text = DOC.read_text()
    missing = [name for name in Catalog().registry.metrics if f"| `{name}` |" not in text]
    assert not missing


def test_the_documentation_links_to_files_that_exist() -> None:
    links = re.findall(r"\]\(([^)#]+)\)", DOC.read_text())
    assert links
    for link in links:
        assert not link.startswith(("http:", "https:")), link
        assert (DOC.parent / link).resolve().exists(), link
