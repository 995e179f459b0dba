"""`gateway serve` as a real process: draining on SIGTERM, reloads, workers, shared metrics."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.server.conftest import worker_pids
from tests.support import (
    LOOPBACK,
    GatewayProcess,
    RawResponse,
    Upstream,
    echo_handler,
    eventually,
    free_port,
    parse_responses,
    raw_request,
    routes,
    upstream_server,
)

WAIT = 20.0  # generous: the machine may be busy; nothing here asserts on durations
Launch = Callable[..., GatewayProcess]

ECHO = "{name: echo, path: /echo, upstream: echo, auth: none}"
NEW = "{name: new, path: /new, upstream: echo, auth: none}"


# -- helpers -----------------------------------------------------------------------------------


async def get(port: int, path: str, headers: bytes = b"") -> RawResponse:
    """One GET on a connection of its own."""
    request = b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n" % (
        path.encode(),
        headers,
    )
    return await raw_request(port, request, timeout=WAIT)


async def until_status(port: int, path: str, status: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (await get(port, path)).status != status:
        if loop.time() > deadline:
            raise AssertionError(f"{path} never answered {status}")
        await asyncio.sleep(0.1)


async def routes_hash(port: int) -> str:
    response = await get(port, "/ready")
    assert response.status == 200
    return str(response.json()["routes_sha256"])


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def serving_pid(server_port: int, client_port: int, candidates: set[int]) -> int | None:
    """Which of `candidates` holds the server end of the loopback connection from
    `client_port` (found through /proc/net/tcp and each process's open sockets)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (
            int(local.split(":")[1], 16) == server_port
            and int(remote.split(":")[1], 16) == client_port
        ):
            inode = fields[9]
    if inode is None:
        return None
    for pid in candidates:
        if f"socket:[{inode}]" in _fd_links(pid):
            return pid
    return None


def _fd_links(pid: int) -> set[str]:
    """What the process's open descriptors point at. A descriptor closed while we look (the
    worker's database thread opens and closes files) is skipped, not the whole process."""
    links: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return links
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:
            continue
    return links


async def request_served_by(port: int, path: str, pids: set[int]) -> tuple[int, int | None]:
    """Send one GET on a new kept-alive connection; its status and the worker that served it."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
        received = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        length = next(
            int(line.split(b":", 1)[1])
            for line in received.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        received += await asyncio.wait_for(reader.readexactly(length), WAIT)
        status = parse_responses(received)[0].status
        return status, serving_pid(port, writer.get_extra_info("sockname")[1], pids)
    finally:
        writer.close()


async def spread_over_workers(port: int, path: str, pids: set[int]) -> dict[int, int]:
    """Requests on new connections until every worker in `pids` has served one; how many
    each served (the kernel, not the gateway, decides which worker accepts a connection)."""
    served: dict[int, int] = {}
    for _ in range(300):
        status, pid = await request_served_by(port, path, pids)
        assert status == 200
        assert pid is not None
        served[pid] = served.get(pid, 0) + 1
        if set(served) == pids:
            return served
    raise AssertionError(f"not every worker served a request: {served}")


# -- SIGTERM -----------------------------------------------------------------------------------


@pytest.fixture
async def held_upstream() -> AsyncIterator[tuple[Upstream, asyncio.Event, asyncio.Event]]:
    """An echo upstream that answers only once `release` is set; `arrived` says it has a
    request in hand."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await asyncio.wait_for(release.wait(), WAIT)
        return await echo_handler(request)

    async with upstream_server(handler) as server:
        yield server, arrived, release


@pytest.mark.parametrize(
    "workers",
    [
        pytest.param(1, id="one-worker"),
        pytest.param(
            2,
            id="two-workers",
        ),
    ],
)
async def test_sigterm_drains_the_request_in_flight_and_refuses_new_connections(
    launch: Launch,
    held_upstream: tuple[Upstream, asyncio.Event, asyncio.Event],
    workers: int,
) -> None:
    upstream, arrived, release = held_upstream
    gateway = launch(routes({"echo": [upstream.url]}, ECHO), workers=workers)
    in_flight = asyncio.create_task(get(gateway.port, "/echo/slow"))
    await asyncio.wait_for(arrived.wait(), WAIT)

    gateway.signal(signal.SIGTERM)
    refused = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not refused and not in_flight.done() and loop.time() < deadline:
        try:
            _, writer = await asyncio.open_connection(LOOPBACK, gateway.port)
        except ConnectionRefusedError:
            refused = True
        else:
            writer.close()
            await asyncio.sleep(0.05)
    assert refused, "new connections were still accepted while draining"
    assert not in_flight.done()  # the drain waits for it
    release.set()

    response = await asyncio.wait_for(in_flight, WAIT)
    code = await asyncio.to_thread(gateway.process.wait, WAIT)
    assert response.status == 200
    assert response.json()["path"] == "/echo/slow"
    assert code == 0


# -- reloads -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "workers"),
    [
        pytest.param("sighup", 1, id="sighup"),
        pytest.param("sighup", 2, id="sighup-two-workers"),
        pytest.param("watcher", 1, id="file-watcher"),
    ],
)
async def test_a_changed_route_table_is_applied(
    launch: Launch, upstream: Upstream, trigger: str, workers: int
) -> None:
    env = {"GATEWAY_WATCH_CONFIG": "false"} if trigger == "sighup" else {}
    gateway = launch(routes({"echo": [upstream.url]}, ECHO), workers=workers, env=env)
    old_hash = await routes_hash(gateway.port)
    assert old_hash == sha256_of(gateway.config)
    assert (await get(gateway.port, "/new")).status == 404

    gateway.config.write_text(routes({"echo": [upstream.url]}, ECHO, NEW))
    if trigger == "sighup":
        assert (await get(gateway.port, "/new")).status == 404  # nothing watches the file
        gateway.signal(signal.SIGHUP)
    await until_status(gateway.port, "/new", 200)

    if workers > 1:
        # Every worker reloaded, not only the one that answered first.
        await spread_over_workers(gateway.port, "/new", worker_pids(gateway))
    new_hash = await routes_hash(gateway.port)
    assert new_hash == sha256_of(gateway.config)
    assert new_hash != old_hash
    assert (await get(gateway.port, "/echo")).status == 200


# The routes section of a bad file; the mistake is on its second line.
BAD_FILES = [
    pytest.param(
        "routes:\n  - {name: echo, path: /echo, upstream: nowhere, auth: none}\n",
        "unknown upstream 'nowhere'",
        id="unknown-upstream",
    ),
    pytest.param("routes:\n\t- {name: echo}\n", "not valid YAML", id="broken-yaml"),
    pytest.param(
        "routes:\n  - {name: echo, path: /echo, upstream: echo, auth: nonsense}\n",
        "'nonsense' is not one of",
        id="unknown-auth",
    ),
]


@pytest.mark.parametrize("trigger", ["sighup", "watcher"])
@pytest.mark.parametrize(("tail", "reason"), BAD_FILES)
async def test_a_bad_route_table_is_refused_and_the_old_one_keeps_serving(
    launch: Launch, upstream: Upstream, trigger: str, tail: str, reason: str
) -> None:
    env = {"GATEWAY_WATCH_CONFIG": "false"} if trigger == "sighup" else {}
    gateway = launch(routes({"echo": [upstream.url]}, ECHO), env=env)
    old_hash = await routes_hash(gateway.port)

    head = routes({"echo": [upstream.url]}).removesuffix("routes:\n")
    bad = head + tail
    gateway.config.write_text(bad)
    bad_line = len(head.splitlines()) + 2
    if trigger == "sighup":
        gateway.signal(signal.SIGHUP)

    def refusal_logged() -> bool:
        for line in gateway.logs().splitlines():
            try:
                message = str(json.loads(line).get("message", ""))
            except ValueError:
                continue
            if "refused" in message and str(gateway.config) in message:
                return True
        return False

    await eventually(refusal_logged, "the refusal in the log")
    logged = next(line for line in gateway.logs().splitlines() if "refused" in line)
    message = json.loads(logged)["message"]
    assert f"{gateway.config}:{bad_line}:" in message
    assert reason in message
    assert json.loads(logged)["level"] == "error"

    assert (await get(gateway.port, "/echo")).status == 200
    assert await routes_hash(gateway.port) == old_hash


# -- workers -----------------------------------------------------------------------------------


async def test_workers_share_the_socket_and_a_killed_worker_is_replaced(
    launch: Launch, upstream: Upstream
) -> None:
    gateway = launch(routes({"echo": [upstream.url]}, ECHO), workers=2)
    pids = worker_pids(gateway)
    assert len(pids) == 2
    await spread_over_workers(gateway.port, "/echo", pids)

    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    await eventually(lambda: not running(victim), "the killed worker to be gone")
    for _ in range(10):
        assert (await get(gateway.port, "/echo")).status == 200
    await eventually(lambda: len(worker_pids(gateway) - {victim}) == 2, "a replacement worker")
    replacement = worker_pids(gateway) - pids
    assert len(replacement) == 1
    assert victim not in worker_pids(gateway)

    await spread_over_workers(gateway.port, "/echo", worker_pids(gateway))
    assert await asyncio.to_thread(gateway.stop, WAIT) == 0


async def test_a_replaced_worker_reads_the_route_table_as_it_is_now(
    launch: Launch, upstream: Upstream
) -> None:
    # The supervisor parsed routes.yaml once, at start: a worker it forks later must not serve
    # that copy when the file has changed since (here with nothing told to reload).
    env = {"GATEWAY_WATCH_CONFIG": "false"}
    gateway = launch(routes({"echo": [upstream.url]}, ECHO), workers=2, env=env)
    pids = worker_pids(gateway)
    await spread_over_workers(gateway.port, "/echo", pids)
    gateway.config.write_text(routes({"echo": [upstream.url]}, ECHO, NEW))
    assert (await get(gateway.port, "/new")).status == 404

    for victim in pids:
        os.kill(victim, signal.SIGKILL)
    await eventually(lambda: not worker_pids(gateway) & pids, "the killed workers to be gone")
    # Only replacements answer now; each has read the file as it is.
    await until_status(gateway.port, "/new", 200)
    for _ in range(20):
        assert (await get(gateway.port, "/new")).status == 200


async def test_request_ids_are_unique_across_workers(launch: Launch, upstream: Upstream) -> None:
    gateway = launch(routes({"echo": [upstream.url]}, ECHO), workers=2)
    await spread_over_workers(gateway.port, "/echo", worker_pids(gateway))
    ids = [(await get(gateway.port, "/echo")).header("X-Request-Id") for _ in range(20)]
    seen_upstream = [
        value
        for document in upstream.seen
        for name, value in document["headers"]
        if name.lower() == "x-request-id"
    ]
    assert len(set(seen_upstream)) == len(seen_upstream), "two requests shared an id"
    assert len(set(ids)) == len(ids)


async def test_metrics_sum_the_requests_of_every_worker(launch: Launch, upstream: Upstream) -> None:
    gateway = launch(routes({"echo": [upstream.url]}, ECHO), workers=2)
    served = await spread_over_workers(gateway.port, "/echo", worker_pids(gateway))
    for _ in range(5):
        assert (await get(gateway.port, "/echo")).status == 200
    total = sum(served.values()) + 5

    async def echo_requests() -> float:
        response = await get(gateway.port, "/metrics")
        assert response.status == 200
        return sum(
            sample.value
            for family in text_string_to_metric_families(response.body.decode())
            for sample in family.samples
            if sample.name == "gateway_requests_total" and sample.labels["route"] == "echo"
        )

    # Other workers' counts arrive through snapshot files written about once a second.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    counted = await echo_requests()
    while counted < total and loop.time() < deadline:
        await asyncio.sleep(0.3)
        counted = await echo_requests()
    assert counted == total


# -- start-up ----------------------------------------------------------------------------------

GATEWAY_SERVE = [sys.executable, "-m", "gateway", "serve"]
BAD_ENVIRONMENT = [
    pytest.param("GATEWAY_KEEPALIVE_TIMEOUT", "abc", id="keepalive-timeout"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "-1s", id="header-timeout"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "lots", id="max-header-size"),
    pytest.param("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/33", id="trusted-proxies"),
    pytest.param("GATEWAY_WATCH_CONFIG", "maybe", id="watch-config"),
    pytest.param("GATEWAY_BAN_WINDOW", "soon", id="ban-window"),
]


@pytest.mark.parametrize(("name", "value"), BAD_ENVIRONMENT)
def test_a_bad_environment_value_stops_start_up_naming_the_variable(
    tmp_path: Path, name: str, value: str
) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(routes({"echo": ["http://127.0.0.1:9"]}, ECHO))
    port = free_port()
    result = subprocess.run(
        [*GATEWAY_SERVE, "--config", str(config), "--host", LOOPBACK, "--port", str(port)],
        env={**os.environ, name: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert name in result.stderr
    assert value in result.stderr
