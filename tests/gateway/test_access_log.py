"""The access log on real requests through a running gateway (docs/operations/observability.md):
one JSON line a request with the time in RFC 3339, the upstream tried and its answer, the
bytes, who the credential proved, the refusal's code and the trace id; never a secret."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from auth_core.models import Principal
from auth_core.service import CallInfo
from gateway.accesslog import AccessLog
from gateway.config import Settings
from tests.support import (
    Upstream,
    free_port,
    raw_request,
    routes,
    running_gateway,
)

CALL = CallInfo()
PASSWORD = "correct horse battery staple"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ROUTES = (
    "{name: open, path: /open, upstream: echo, auth: none}",
    "{name: private, path: /private, upstream: echo, auth: jwt}",
    "{name: partner, path: /partner, upstream: echo, auth: api_key}",
    "{name: down, path: /down, upstream: down, auth: none}",
)
RFC3339_MS_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
FIELDS = {
    "ts",
    "request_id",
    "trace_id",
    "remote",
    "method",
    "path",
    "status",
    "duration_ms",
    "route",
    "upstream",
    "upstream_addr",
    "upstream_status",
    "upstream_ms",
    "bytes_in",
    "bytes_out",
    "auth",
    "user_id",
    "tenant_id",
    "credential_id",
    "error",
    "user_agent",
}


def logged(path: Path) -> dict[str, dict[str, Any]]:
    """The log's entries by request id (every line one JSON object with every field)."""
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    for entry in entries:
        assert set(entry) == FIELDS, entry
    return {entry["request_id"]: entry for entry in entries}


async def test_each_kind_of_request_logs_its_upstream_bytes_identity_and_refusal(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    log = tmp_path / "access.log"
    down_port = free_port()
    table = routes({"echo": [upstream.url], "down": [f"http://127.0.0.1:{down_port}"]}, *ROUTES)
    settings = Settings(access_log=str(log), watch_config=False)
    ids: dict[str, str] = {}
    bodies: dict[str, int] = {}
    before = time.time()
    async with running_gateway(table, tmp_path, settings) as gw:
        core = gw.core
        tenant = await core.tenants.create("Acme", [], ["127.0.0.0/8"], None, CALL)
        key, key_secret = await core.keys.create(tenant.id, actor_id=None, call=CALL)
        user = await core.accounts.create("ada@example.com", PASSWORD, verified=True)
        pair = await core.sessions.login("ada@example.com", PASSWORD, CALL)
        token = pair.access_token
        asks: dict[str, tuple[str, str, dict[str, str], bytes | None, int]] = {
            "jwt": (
                "GET",
                "/private/a?access_token=query-secret-1",
                {
                    "Authorization": f"Bearer {token}",
                    "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01",
                    "Cookie": "gw_session=cookie-secret-2",
                },
                None,
                200,
            ),
            "api_key": ("POST", "/partner/b", {"X-API-Key": key_secret}, b"0123456789", 200),
            "refused": (
                "GET",
                "/private/c",
                {"Authorization": "Bearer bad-token-secret-3"},
                None,
                401,
            ),
            "down": ("GET", "/down/d", {}, None, 502),
            "live": ("GET", "/live", {}, None, 200),
            "no_route": ("GET", "/nowhere", {}, None, 404),
        }
        for name, (method, target, headers, data, status) in asks.items():
            async with client.request(
                method, f"{gw.url}{target}", headers=headers, data=data
            ) as response:
                assert response.status == status, name
                bodies[name] = len(await response.read())
                ids[name] = response.headers["X-Request-Id"]
    after = time.time()
    entries = logged(log)
    text = log.read_text()
    for secret in (token, pair.refresh_token, key_secret, PASSWORD, "secret-1", "secret-2"):
        assert secret not in text
    assert "secret-3" not in text
    assert "Bearer" not in text
    assert "gw_session" not in text

    for name, request_id in ids.items():
        entry = entries[request_id]
        assert RFC3339_MS_UTC.fullmatch(entry["ts"]), entry["ts"]
        stamp = datetime.fromisoformat(entry["ts"]).timestamp()
        assert before - 0.001 <= stamp <= after + 0.001
        assert entry["remote"] == "127.0.0.1"
        assert entry["bytes_out"] == bodies[name], name
        assert isinstance(entry["duration_ms"], float | int)
        assert re.fullmatch(r"[0-9a-f]{32}", entry["trace_id"]), name

    echo = f"127.0.0.1:{upstream.port}"
    jwt = entries[ids["jwt"]]
    assert jwt["trace_id"] == TRACE  # the client's trace, carried on
    assert (jwt["method"], jwt["path"], jwt["status"], jwt["route"]) == (
        "GET",
        "/private/a",
        200,
        "private",
    )
    assert (jwt["upstream"], jwt["upstream_addr"], jwt["upstream_status"]) == ("echo", echo, 200)
    assert 0 <= jwt["upstream_ms"] <= jwt["duration_ms"]
    assert (jwt["auth"], jwt["user_id"], jwt["tenant_id"], jwt["credential_id"]) == (
        "jwt",
        user.id,
        None,
        None,
    )
    assert (jwt["bytes_in"], jwt["error"]) == (0, None)

    api_key = entries[ids["api_key"]]
    assert (api_key["auth"], api_key["user_id"]) == ("api_key", None)
    assert (api_key["tenant_id"], api_key["credential_id"]) == (tenant.id, key.id)
    assert (api_key["bytes_in"], api_key["upstream_status"], api_key["error"]) == (10, 200, None)

    refused = entries[ids["refused"]]
    assert (refused["status"], refused["error"], refused["route"]) == (
        401,
        "invalid_token",
        "private",
    )
    assert (refused["upstream"], refused["upstream_addr"], refused["upstream_status"]) == (
        "echo",
        None,
        None,
    )
    assert refused["upstream_ms"] is None
    assert refused["user_id"] is None

    down = entries[ids["down"]]
    assert (down["status"], down["error"], down["route"]) == (502, "upstream_unavailable", "down")
    assert (down["upstream"], down["upstream_addr"]) == ("down", f"127.0.0.1:{down_port}")
    assert (down["upstream_status"], down["upstream_ms"]) == (None, None)

    live = entries[ids["live"]]
    assert (live["route"], live["upstream"], live["status"], live["error"]) == (
        "@live",
        None,
        200,
        None,
    )
    no_route = entries[ids["no_route"]]
    assert (no_route["route"], no_route["status"], no_route["error"]) == (
        "@no_route",
        404,
        "route_not_found",
    )


async def test_a_request_refused_while_parsing_is_logged_as_refused(
    tmp_path: Path, upstream: Upstream
) -> None:
    log = tmp_path / "access.log"
    settings = Settings(access_log=str(log), watch_config=False)
    table = routes({"echo": [upstream.url]}, ROUTES[0])
    async with running_gateway(table, tmp_path, settings) as gw:
        response = await raw_request(
            gw.port, b"GET /open HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", timeout=15
        )
    assert response.status == 400
    entries = logged(log)
    entry = entries[str(response.header("X-Request-Id"))]
    assert (entry["status"], entry["route"], entry["error"], entry["method"]) == (
        400,
        "@refused",
        "invalid_request",
        "-",
    )
    assert entry["trace_id"] is None
    assert entry["bytes_out"] is None
    assert RFC3339_MS_UTC.fullmatch(entry["ts"])


async def test_lines_carry_the_time_they_were_written_to_the_millisecond(tmp_path: Path) -> None:
    log = AccessLog(str(tmp_path / "access.log"))
    stamps = []
    for n in range(3):
        before = time.time()
        log.log(
            f"id-{n}", None, "127.0.0.1", "GET", "/a", 200, 12345, "r", "u", "10.0.0.1:80",
            200, 1900, 5, 48, "none", None, None, None,
        )  # fmt: skip
        stamps.append((before, time.time()))
        # The next line a millisecond later at least (a loop step: the log needs a loop).
        while time.time() < stamps[-1][1] + 0.002:
            await asyncio.sleep(0.001)
    log.close()
    entries = logged(tmp_path / "access.log")
    for n, (before, after) in enumerate(stamps):
        entry = entries[f"id-{n}"]
        assert RFC3339_MS_UTC.fullmatch(entry["ts"])
        stamp = datetime.fromisoformat(entry["ts"])
        assert stamp.tzinfo == UTC
        assert int(before * 1000) <= round(stamp.timestamp() * 1000) <= int(after * 1000)
    first = entries["id-0"]
    assert (first["duration_ms"], first["upstream_ms"]) == (12.345, 1.9)
    assert (first["upstream_addr"], first["bytes_in"], first["bytes_out"]) == ("10.0.0.1:80", 5, 48)
    assert len({entry["ts"] for entry in entries.values()}) == 3


async def test_paths_names_and_agents_are_escaped(tmp_path: Path) -> None:
    log = AccessLog(str(tmp_path / "access.log"))
    log.log(
        "id-1", None, "127.0.0.1", "GET", '/a"b\\c', 200, 0, 'r"1', None, None, 0, 0, 0,
        0, "jwt", Principal("jwt", user_id="usr_1"), None, b'agent "x"\n',
    )  # fmt: skip
    log.close()
    entry = logged(tmp_path / "access.log")["id-1"]
    assert (entry["path"], entry["route"], entry["user_id"], entry["user_agent"]) == (
        '/a"b\\c',
        'r"1',
        "usr_1",
        'agent "x"\n',
    )


async def test_large_figures_and_each_callers_ids_on_the_usual_line(tmp_path: Path) -> None:
    # The usual line (an upstream answered, a trace id, no error) looks figures below 1000 up
    # and formats the rest; each principal's ids are kept by identity, so two callers logged
    # in turn, or a new principal object, each get their own.
    log = AccessLog(str(tmp_path / "access.log"))
    alice = Principal("jwt", user_id="usr_a1", tenant_id="ten_a1", credential_id="ses_a1")
    bob = Principal("api_key", tenant_id="ten_b2", credential_id="key_b2")
    figures = [
        (alice, 503, 1_234_567, 999_999, 1000, 123_456),
        (bob, 200, 999, 1000, 999, 0),
        (alice, 204, 7, 0, 0, 999),
        (Principal("jwt", user_id="usr_c3"), 200, 1_000_000, 5_000_001, 42, 1000),
    ]
    for n, (who, status, took, upstream_took, bytes_in, bytes_out) in enumerate(figures):
        log.log(
            f"id-{n}", TRACE, "10.1.2.3", "POST", "/p", status, took, "r", "u", "10.0.0.1:80",
            status, upstream_took, bytes_in, bytes_out, who.method, who, None, b"agent/1",
        )  # fmt: skip
    log.close()
    entries = logged(tmp_path / "access.log")
    fields = (
        "status", "duration_ms", "upstream_ms", "bytes_in", "bytes_out", "user_id", "tenant_id",
        "credential_id", "upstream_status", "trace_id", "user_agent",
    )  # fmt: skip
    got = [tuple(entries[f"id-{n}"][field] for field in fields) for n in range(4)]
    assert got == [
        (503, 1234.567, 999.999, 1000, 123456, "usr_a1", "ten_a1", "ses_a1", 503, TRACE, "agent/1"),
        (200, 0.999, 1.0, 999, 0, None, "ten_b2", "key_b2", 200, TRACE, "agent/1"),
        (204, 0.007, 0.0, 0, 999, "usr_a1", "ten_a1", "ses_a1", 204, TRACE, "agent/1"),
        (200, 1000.0, 5000.001, 42, 1000, "usr_c3", None, None, 200, TRACE, "agent/1"),
    ]
    raw = (tmp_path / "access.log").read_text().splitlines()
    assert '"duration_ms":1234.567,' in raw[0]
    assert '"upstream_ms":0.000,' in raw[2]


async def test_long_user_agents_are_logged_whole(tmp_path: Path) -> None:
    # A client chooses its user agent: one over 256 bytes is encoded each time (not cached).
    log = AccessLog(str(tmp_path / "access.log"))
    long_agent = b'agent "' + b"x" * 400 + b"\xe9"
    for n in range(2):
        log.log(
            f"id-{n}", TRACE, "127.0.0.1", "GET", "/a", 200, 1, "r", "u", "10.0.0.1:80", 200,
            1, 0, 2, "none", None, None, long_agent,
        )  # fmt: skip
    log.close()
    entries = logged(tmp_path / "access.log")
    for n in range(2):
        assert entries[f"id-{n}"]["user_agent"] == 'agent "' + "x" * 400 + "\u00e9"
