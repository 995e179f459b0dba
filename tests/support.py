"""What the tests share: tables of cases, a bounded wait for what should soon hold, real
upstream servers, a real gateway (in this process or as a child process), a raw socket client,
exchanges without sockets, and the tokens and forged headers a client may send.

Everything listens on 127.0.0.1 (or another loopback address a test asks for) with a port the
kernel picks; nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from multidict import CIMultiDictProxy
from netaddr import IPSet

from auth_core.config import AuthSettings
from auth_core.passwords import HashCost
from auth_core.service import AuthCore
from auth_core.store import Database, open_database
from auth_core.store.migrate import migrate
from auth_core.tokens import Keyring
from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.http.connection import HttpConnection
from gateway.http.request import Request
from gateway.http.response import Response
from gateway.http.server import HttpServer, Limits
from gateway.pipeline.client_address import ClientAddressResolver, ResolveClientAddress
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.match_route import MatchRoute
from gateway.pipeline.parse_target import ParseTarget
from gateway.pipeline.stage import StageResult
from gateway.routing.loader import load_route_table, parse_route_table
from gateway.routing.table import RouteTable
from gateway.server.run import Worker, bind

LOOPBACK = "127.0.0.1"
SEEN = web.AppKey("seen", list[dict[str, Any]])


# -- tables of cases ---------------------------------------------------------------------------


def cases(table: Iterable[Sequence[Any]]) -> list[Any]:
    """A table of cases, each `(description, *values)`, as parameters of a parametrized test
    named by their descriptions."""
    return [pytest.param(*case[1:], id=case[0]) for case in table]


# -- waiting -----------------------------------------------------------------------------------


async def eventually(check: Callable[[], object], what: str, *, limit: float = 30.0) -> None:
    """Poll `check` until it holds; fail naming `what` after `limit` seconds (a bound for a busy
    machine, not a measurement: nothing asserts on how long it took)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not check():
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


# -- databases ---------------------------------------------------------------------------------


@asynccontextmanager
async def two_connections(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two connections to one migrated database, as two replicas writing at once hold: one can
    keep a transaction open while the other commits."""
    slow, fast = await open_database(database_url), await open_database(database_url)
    try:
        await migrate(slow)
        yield slow, fast
    finally:
        await slow.close()
        await fast.close()


# -- identities and tokens ---------------------------------------------------------------------


# What a client may send to pass for someone else: identity headers of its own and a gateway
# signature it made up. The gateway must drop them all and send (or answer) its own.
FORGED_IDENTITY = {
    "X-User-Id": "usr_admin",
    "X-User-Roles": "admin",
    "X-Tenant-Id": "ten_forged",
    "X-Credential-Id": "key_forged",
    "X-Auth-Method": "service",
    "X-Gateway-Timestamp": "1",
    "X-Gateway-Signature": "v2,kid=k1,aud=echo,sig=forged",
    "X-User-Email-Verified": "forged",
}


def access_claims(now: float, **changes: Any) -> dict[str, Any]:
    """The claims of an access token as the gateway issues it (issuer and audience `gateway`,
    user usr_1 of session ses_1 with the role `user`, issued at `now`, for ten minutes), with
    `changes` made: a value of None removes the claim."""
    claims: dict[str, Any] = {
        "iss": "gateway",
        "aud": "gateway",
        "sub": "usr_1",
        "sid": "ses_1",
        "jti": "jti_1",
        "roles": ["user"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        **changes,
    }
    return {name: value for name, value in claims.items() if value is not None}


# -- upstreams ---------------------------------------------------------------------------------


@dataclass
class Upstream:
    """A real HTTP server the gateway forwards to; it records what it received."""

    port: int
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


async def echo_handler(request: web.Request) -> web.StreamResponse:
    """Echo what arrived, as JSON: method, raw path, headers (all values), body size and text.

    Behaviour can be asked for with headers: `X-Test-Status` (status), `X-Test-Delay` (seconds
    before answering), `X-Test-Cookies` (that many Set-Cookie headers).
    """
    body = await request.read()
    if request.headers.get("X-Test-Delay"):
        await asyncio.sleep(float(request.headers["X-Test-Delay"]))
    status = int(request.headers.get("X-Test-Status", "200"))
    document = {
        "method": request.method,
        "path": request.raw_path,
        "headers": [[name, value] for name, value in request.headers.items()],
        "body_size": len(body),
        "body": body[:4096].decode("utf-8", "replace"),
        "port": request.transport.get_extra_info("sockname")[1] if request.transport else 0,
    }
    request.app[SEEN].append(document)
    response = web.Response(
        status=status,
        body=json.dumps(document).encode() if status not in (204, 304) else None,
        content_type="application/json" if status not in (204, 304) else None,
    )
    for i in range(int(request.headers.get("X-Test-Cookies", "0"))):
        response.headers.add("Set-Cookie", f"c{i}=v{i}; Path=/; HttpOnly")
    return response


def received_headers(seen: dict[str, Any]) -> dict[str, list[str]]:
    """The headers in what the echo upstream recorded of a request: lower-case name -> every
    value, in order."""
    headers: dict[str, list[str]] = {}
    for name, value in seen["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    return headers


@asynccontextmanager
async def upstream_server(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]] = echo_handler,
    *,
    port: int = 0,
    client_max_size: int = 64 * 1024 * 1024,
) -> AsyncIterator[Upstream]:
    """Start an aiohttp server on loopback that routes every request to `handler`."""
    app = web.Application(client_max_size=client_max_size)
    seen: list[dict[str, Any]] = []
    app[SEEN] = seen
    app.router.add_route("*", "/{tail:.*}", handler)
    async with serving(app, port=port, handler_cancellation=True) as bound:
        yield Upstream(bound, seen)


@asynccontextmanager
async def serving(app: web.Application, *, port: int = 0, **options: Any) -> AsyncIterator[int]:
    """`app` served on loopback (`options` for its AppRunner; no access log); its port."""
    runner = web.AppRunner(app, access_log=None, **options)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, port)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def free_port() -> int:
    """A port nothing listens on (for refused connections)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# -- the gateway -------------------------------------------------------------------------------


@dataclass
class RunningGateway:
    worker: Worker
    config: Path

    @property
    def port(self) -> int:
        return self.worker.port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def core(self) -> AuthCore:
        """The auth core in this gateway's process (started with the worker)."""
        core = self.worker.core
        assert core is not None, "the worker has not started"
        return core


@asynccontextmanager
async def running_gateway(
    routes_yaml: str, directory: Path, settings: Settings | None = None, *, host: str = LOOPBACK
) -> AsyncIterator[RunningGateway]:
    """The gateway serving `routes_yaml` in this event loop, on a port of its own (on `host`, a
    loopback address: 127.0.0.1 unless the test needs another, such as ::1)."""
    config = directory / "routes.yaml"
    config.write_text(routes_yaml)
    table = load_route_table(config)
    settings = settings or quiet_settings()
    if settings.auth == AuthSettings():
        # Never the default ./gateway.db of the working directory: a database of its own.
        settings = dataclasses.replace(settings, auth=auth_settings(directory))
    worker = Worker(
        settings,
        table,
        bind(host, 0),
        config_path=config,
    )
    await worker.start()
    try:
        yield RunningGateway(worker, config)
    finally:
        await worker.stop()
        worker.sock.close()


@asynccontextmanager
async def two_gateways(
    routes_yaml: str, directory: Path, settings: Settings
) -> AsyncIterator[tuple[RunningGateway, RunningGateway]]:
    """Two gateways (two replicas) with the same routes and settings, so the same database and
    Redis: each on a port and in a directory (`a`, `b`) of its own."""
    (directory / "a").mkdir()
    (directory / "b").mkdir()
    async with (
        running_gateway(routes_yaml, directory / "a", settings) as first,
        running_gateway(routes_yaml, directory / "b", settings) as second,
    ):
        yield first, second


def quiet_settings(**overrides: Any) -> Settings:
    """The gateway's settings for a test: no access log, no watching of routes.yaml (the test
    reloads when it means to), and whatever the test sets."""
    return Settings(access_log="off", watch_config=False, **overrides)


FAST_HASHING = HashCost(time_cost=1, memory_kib=8192, parallelism=1)


def auth_settings(directory: Path, **overrides: Any) -> AuthSettings:
    """Auth settings for a test: its own SQLite file, fast password hashing, mail to an outbox."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{directory}/gateway.db",
        "hash_cost": FAST_HASHING,
        "mail_url": f"outbox:{directory}/outbox",
    }
    values.update(overrides)
    if not str(values["database_url"]).startswith("sqlite"):
        # PostgreSQL never generates secrets: every replica must be given the same ones.
        values.setdefault("jwt_keyring", Keyring.parse(Keyring.generate("t1")))
        values.setdefault("service_keyring", Keyring.parse(Keyring.generate("s1")))
    return AuthSettings(**values)


def routes(upstreams: dict[str, list[str]], *route_lines: str, extra: str = "") -> str:
    """A routes.yaml text: `upstreams` name -> target URLs, then one route a line (YAML flow)."""
    lines = ["version: 1", "upstreams:"]
    for name, targets in upstreams.items():
        lines.append(f"  {name}:")
        lines.append(f"    targets: {json.dumps(targets)}")
        lines.append("    connect_timeout: 1s")
        lines.append("    timeout: 5s")
    lines.append("routes:")
    lines.extend(f"  - {line}" for line in route_lines)
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer read to its end (the client's view of a site under test)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def request_id(self) -> str:
        return self.headers["X-Request-Id"]


async def fetch(client: ClientSession, method: str, url: str, **options: Any) -> Answer:
    """One request, its answer read to the end (redirects are answers, not followed)."""
    async with client.request(method, url, allow_redirects=False, **options) as response:
        return Answer(response.status, response.headers, await response.read())


def assert_problem(answer: Answer, status: int, code: str) -> None:
    """A problem+json answer (docs/errors.md) with this status and `error` code."""
    assert answer.status == status, answer.body
    assert answer.headers["Content-Type"].startswith("application/problem+json"), answer.headers
    body = answer.json()
    assert set(body) >= {"type", "title", "status", "detail", "error", "request_id"}, body
    assert (body["status"], body["error"]) == (status, code), body
    assert body["request_id"] == answer.request_id
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Bearer "), answer.headers


# -- raw sockets -------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


def parse_head(head: bytes) -> RawResponse:
    """A response's status line and header fields (the blank line after them or not), with an
    empty body."""
    lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in lines[1:])
    ]
    return RawResponse(status, headers, b"")


def parse_responses(data: bytes) -> list[RawResponse]:
    """Split what a server sent into responses (Content-Length or chunked bodies)."""
    responses = []
    rest = data
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        response = parse_head(head)
        status = response.status
        length = response.header("Content-Length")
        if status < 200:
            continue
        if length is not None:
            response.body, rest = rest[: int(length)], rest[int(length) :]
        elif (response.header("Transfer-Encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                chunk, rest = rest[:size], rest[size + 2 :]
                body += chunk
                if size == 0:
                    break
            response.body = body
        responses.append(response)
    return responses


@asynccontextmanager
async def tcp_server(
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    """A plain TCP server on loopback that hands each connection to `serve`; its port."""
    server = await asyncio.start_server(serve, LOOPBACK, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def raw_exchange(
    port: int, data: bytes, *, timeout: float = 5.0, host: str = LOOPBACK
) -> bytes:
    """Send `data` as is and read until the server closes or stays silent for `timeout`."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        received = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), timeout)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        return received
    finally:
        writer.close()


async def raw_request(port: int, data: bytes, **kwargs: Any) -> RawResponse:
    """The first response to `data`."""
    responses = parse_responses(await raw_exchange(port, data, **kwargs))
    assert responses, "no response"
    return responses[0]


# -- exchanges without sockets -----------------------------------------------------------------
# Like aiohttp's make_mocked_request: the request is parsed from bytes by the gateway's own
# HTTP parser (an HttpConnection fed the bytes, no transport), the route table loaded from a
# routes.yaml text, so that one pipeline stage can be run on its own.


def parse_request(raw: bytes, *, peer: str = "203.0.113.7") -> Request:
    """The request in `raw` (one head, and a body if any) as the gateway's parser reads it,
    from the TCP peer `peer`. A request the parser refuses fails the test."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()  # only its clock is read while parsing
        loop.close()

    async def unused(request: Request) -> Response | None:
        raise AssertionError("an exchange built without sockets is never served")

    connection = HttpConnection(HttpServer(unused, Limits(), loop))
    connection.peer = peer
    connection.data_received(raw)
    assert connection.queue, f"the parser did not finish a request in {raw!r}"
    request = connection.queue.popleft()
    assert isinstance(request, Request), f"the parser refused {raw!r}: {request}"
    return request


def route_table(routes_yaml: str) -> RouteTable:
    """The table a routes.yaml text loads to (validated as at start-up)."""
    return parse_route_table(routes_yaml)


def make_exchange(
    raw: bytes,
    routes_yaml: str | RouteTable,
    *,
    peer: str = "203.0.113.7",
    request_id: str = "req-1",
) -> Exchange:
    """An exchange as it enters the chain: nothing of it is filled in yet."""
    table = route_table(routes_yaml) if isinstance(routes_yaml, str) else routes_yaml
    return Exchange(parse_request(raw, peer=peer), request_id, table)


def routed_exchange(
    raw: bytes, routes_yaml: str | RouteTable, *, peer: str = "203.0.113.7"
) -> Exchange:
    """An exchange as the body stages get it: client address, path and route set by the
    gateway's own first stages (no trusted proxies)."""
    exchange = make_exchange(raw, routes_yaml, peer=peer)
    for stage in (
        ResolveClientAddress(ClientAddressResolver(IPSet())),
        ParseTarget(),
        MatchRoute(),
    ):
        assert stage(exchange) is None
    return exchange


async def outcome(result: StageResult) -> Response | None:
    """What a stage answered, waited for if it had to wait."""
    if result is None or isinstance(result, Response):
        return result
    return await result


@dataclass(frozen=True)
class Refusal:
    """A stage's refusal, as the client would see it: status, `error` code and headers."""

    status: int
    code: str
    headers: dict[str, str]


def refusal(call: Callable[[], object]) -> Refusal:
    """The refusal that `call` raises (it must raise one)."""
    try:
        call()
    except GatewayError as exc:
        return Refusal(exc.status, str(exc.code), dict(exc.headers))
    raise AssertionError("no refusal")


async def refusal_awaited(call: Callable[[], StageResult]) -> Refusal:
    """The refusal of a stage that may refuse at once or after waiting (it must refuse)."""
    try:
        await outcome(call())
    except GatewayError as exc:
        return Refusal(exc.status, str(exc.code), dict(exc.headers))
    raise AssertionError("no refusal")


# -- the gateway as a process ------------------------------------------------------------------


GATEWAY_COMMAND = [sys.executable, "-m", "gateway"]


def command_environment(directory: Path, **variables: str) -> dict[str, str]:
    """The environment for a `gateway` child process: this one's, with a SQLite database, a
    mail outbox in `directory` and cheap password hashing; `variables` added or overriding."""
    return {
        **os.environ,
        "GATEWAY_DATABASE_URL": f"sqlite:///{directory}/gateway.db",
        "GATEWAY_PASSWORD_HASH_COST": "1,8192,1",
        "GATEWAY_MAIL_URL": f"outbox:{directory}/outbox",
        **variables,
    }


def gateway_command(
    directory: Path,
    environment: dict[str, str],
    *args: str | bytes,
    stdin: str | bytes | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[Any]:
    """`python -m gateway ARGS` run to its end in `directory` with exactly `environment`, its
    output captured: as text, unless `stdin` is bytes."""
    return subprocess.run(
        [*GATEWAY_COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=not isinstance(stdin, bytes),
        timeout=timeout,
        env=environment,
        cwd=directory,
        check=False,
    )


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    config: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def start_gateway_process(
    routes_yaml: str,
    directory: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
    server_name: str = "localhost",
) -> GatewayProcess:
    """`gateway serve` in a child process; returns once it answers /health (over TLS with
    `tls`, a client context, asking for `server_name`)."""
    config = directory / "routes.yaml"
    config.write_text(routes_yaml)
    port = free_port()
    log = directory / f"gateway-{port}.log"
    quiet = {"GATEWAY_ACCESS_LOG": "off", "GATEWAY_RELOAD_INTERVAL": "200ms"}
    environment = command_environment(directory, **{**quiet, **(env or {})})
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *GATEWAY_COMMAND,
                "serve",
                "--config",
                str(config),
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    running = GatewayProcess(process, port, config, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited early:\n{running.logs()}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5) as raw:
                sock = tls.wrap_socket(raw, server_hostname=server_name) if tls else raw
                with sock:
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return running
        except OSError:
            pass
        time.sleep(0.05)
    running.stop()
    raise RuntimeError(f"gateway did not start:\n{running.logs()}")


# -- a Redis server of a test's own (to stop, pause and restart) --------------------------------


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                LOOPBACK,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- a TCP relay a test can cut, to lose a real server and get it back ---------------------------


class TcpRelay:
    """Listens on loopback and relays every connection to `target`. `cut()` drops every
    connection and refuses new ones (the server is gone, as far as clients can tell);
    `restore()` takes connections again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, LOOPBACK, self.port)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()
