"""The compiled build (setup.py, scripts/build-compiled) against the pure-Python package: the
same raw requests through both, compared byte for byte, both what the upstream receives and what
the client gets back.

How both builds run at once: the test runs in scripts/test's compiled pass
(GATEWAY_TEST_COMPILED=1, from a directory holding links to tests/ and not the sources; in the
pure pass it is skipped, as it needs the build that pass is not given). It starts two `gateway
serve` processes with this interpreter, the compiled environment's: one as it is, importing the
installed compiled package, and one with PYTHONPATH set to the checkout the tests/ link
resolves to, so that `import gateway` finds the sources first. Each process says which it is
through its own `gateway_build_info` metric (`compiled="true"` or `"false"`), and the test
fails unless one says each: nothing is assumed about paths. Both are replicas of one
deployment: one routes.yaml, one SQLite database (a tenant and its API key made before they
start), the same JWT and context secrets, and one raw upstream on one port (so the `Host` the
upstream receives is the same).

Each case is a conversation on a raw socket (nothing normalises it): bytes sent, possibly a
wait for an interim answer (`100 Continue`), then everything read until the gateway closes
(every case ends with a closing request or one the gateway refuses and closes on). It runs
through the compiled gateway, then the pure one, with the upstream answering the case's fixed
bytes and recording each request it receives whole. Only what differs by nature between two
processes is masked (`mask` below); everything else must be equal. Each piece a case sends, and
each answer of the upstream, is one write, so that on loopback it arrives whole: where the
gateway streams (a chunked body is re-chunked as it is read), both builds read the same pieces.
No fixed sleeps: every wait is for bytes, a close, or the upstream to settle, bounded by WAIT.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import pytest
import pytest_asyncio
from multidict import CIMultiDict

from auth_core.calls import CallInfo
from auth_core.service import AuthCore
from auth_core.tokens import Keyring
from gateway.context import ContextError, derive_keys, verify
from tests.support import (
    FORGED_IDENTITY,
    LOOPBACK,
    GatewayProcess,
    access_claims,
    auth_settings,
    free_port,
    raw_exchange,
    routes,
    start_gateway_process,
    tcp_server,
)

# The checkout the tests/ link points at: its sources are the pure build.
ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("GATEWAY_TEST_COMPILED") != "1",
        reason="needs the compiled build beside the sources: runs in scripts/test's compiled "
        "pass (GATEWAY_TEST_COMPILED=1)",
    ),
    pytest.mark.asyncio(loop_scope="module"),
]

WAIT = 10.0  # for any one read: a bound for a busy machine; nothing asserts on durations
JWT_SECRET = "t1:differential-test-jwt-secret-not-for-production"
SERVICE_SECRET = "s1:differential-test-service-secret-not-for-production"
AUDIENCE = "up"
# What some answers of the upstream carry, passed to the client and so never masked.
UPSTREAM_DATE = b"Thu, 01 Jan 2026 00:00:00 GMT"
UPSTREAM_RETRY_AFTER = b"7"
DEAD_PORT = free_port()  # nothing listens there: the gateway's connection is refused

ROUTES = routes(
    {AUDIENCE: ["http://127.0.0.1:{port}"], "dead": [f"http://127.0.0.1:{DEAD_PORT}"]},
    "{name: open, path: /open, upstream: up, auth: none}",
    "{name: jwt, path: /jwt, upstream: up, auth: jwt}",
    "{name: admin, path: /admin, upstream: up, auth: jwt, roles: [admin]}",
    "{name: key, path: /key, upstream: up, auth: api_key}",
    "{name: small, path: /small, upstream: up, auth: none, max_body: 16}",
    "{name: strip, path: /strip, upstream: up, auth: none, strip_prefix: true}",
    "{name: getonly, path: /getonly, upstream: up, auth: none, methods: [GET]}",
    "{name: under, path: /under, upstream: up, auth: none, underscores_in_headers: true}",
    "{name: ws, path: /ws, upstream: up, auth: none, websocket: true}",
    "{name: limited, path: /limited, upstream: up, auth: none,"
    " rate_limit: {key: ip, limit: 2, per: 1h}}",
    "{name: dead, path: /dead, upstream: dead, auth: none}",
)


# -- the upstream ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """The upstream's fixed answer to each request of a case; `then_close`: it closes the
    connection after it."""

    data: bytes | Callable[[bytes], bytes]
    then_close: bool = False

    def bytes_for(self, head: bytes) -> bytes:
        return self.data(head) if callable(self.data) else self.data


def _answer(*lines: bytes, body: bytes = b"") -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


PLAIN = Reply(
    _answer(
        b"HTTP/1.1 200 OK",
        b"Content-Type: text/plain",
        b"Content-Length: 5",
        b"X-Up: plain",
        body=b"hello",
    )
)
DATED = Reply(
    _answer(
        b"HTTP/1.1 201 Created",
        b"Date: " + UPSTREAM_DATE,
        b"Server: upstream/1.0",
        b"Set-Cookie: a=1; Path=/; HttpOnly",
        b"Set-Cookie: b=2; Path=/",
        b"content-type: application/json",
        b"X-MiXeD-CaSe: kept",
        b"Content-Length: 11",
        body=b'{"ok":true}',
    )
)
CHUNKED = Reply(
    _answer(
        b"HTTP/1.1 200 OK",
        b"Content-Type: text/plain",
        b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
)
HOP_BY_HOP = Reply(
    _answer(
        b"HTTP/1.1 200 OK",
        b"Connection: keep-alive, X-Private",
        b"Keep-Alive: timeout=5",
        b"X-Private: named in Connection",
        b"Proxy-Authenticate: Basic",
        b"Proxy-Connection: keep-alive",
        b"Trailer: X-Sum",
        b"TE: trailers",
        b"Upgrade: h2c",
        b"X-Kept: yes",
        b"Content-Length: 2",
        body=b"ok",
    )
)
DISGUISED = Reply(
    _answer(
        b"HTTP/1.1 200 OK",
        b"Transfer_Encoding: chunked",
        b"Content_Length: 99",
        b"Keep_Alive: timeout=1",
        b"X_Other: passes",
        b"Content-Length: 2",
        body=b"ok",
    )
)
NO_CONTENT = Reply(_answer(b"HTTP/1.1 204 No Content", b"X-Up: none"))
NOT_MODIFIED = Reply(_answer(b"HTTP/1.1 304 Not Modified", b'ETag: "v1"', b"X-Up: same"))
HEAD_ANSWER = Reply(_answer(b"HTTP/1.1 200 OK", b"Content-Type: text/plain", b"Content-Length: 5"))
UNSIZED = Reply(
    _answer(b"HTTP/1.1 200 OK", b"Content-Type: text/plain", body=b"until close"), then_close=True
)
CLOSING = Reply(
    _answer(b"HTTP/1.1 200 OK", b"Connection: close", b"Content-Length: 2", body=b"ok"),
    then_close=True,
)
LARGE = Reply(_answer(b"HTTP/1.1 200 OK", b"Content-Length: 70000", body=b"L" * 70_000))
FAILING = Reply(
    _answer(
        b"HTTP/1.1 503 Service Unavailable",
        b"Content-Type: application/json",
        b"Retry-After: " + UPSTREAM_RETRY_AFTER,
        b"Content-Length: 15",
        body=b'{"down":"yes"}\n',
    )
)
TEAPOT = Reply(_answer(b"HTTP/1.1 418 I'm a teapot", b"Content-Length: 0"))
EARLY_HINTS = Reply(
    _answer(b"HTTP/1.1 103 Early Hints", b"Link: </style.css>; rel=preload")
    + _answer(b"HTTP/1.1 200 OK", b"Content-Length: 2", body=b"ok")
)
TRUNCATED = Reply(_answer(b"HTTP/1.1 200 OK", b"Content-Length: 10", body=b"abc"), then_close=True)
GARBAGE = Reply(b"SMTP ready\r\n\r\n", then_close=True)
BOTH_FRAMINGS = Reply(
    _answer(
        b"HTTP/1.1 200 OK",
        b"Content-Length: 3",
        b"Transfer-Encoding: chunked",
        body=b"3\r\nabc\r\n0\r\n\r\n",
    ),
    then_close=True,
)
NON_ASCII = Reply(
    _answer(b"HTTP/1.1 200 OK", b"X-Name: caf\xe9 \xc3\xa9", b"Content-Length: 2", body=b"ok")
)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _websocket_accept(head: bytes) -> bytes:
    """101 with the accept of the key the gateway sent, a text frame and a close frame (server
    frames, unmasked: the same bytes every time)."""
    key = re.search(rb"(?im)^sec-websocket-key:[ \t]*(\S+)", head)
    assert key, head
    accept = base64.b64encode(hashlib.sha1(key.group(1) + WS_GUID).digest())  # noqa: S324
    return _answer(
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + accept,
    ) + (b"\x81\x05hello" + b"\x88\x02\x03\xe8")


WEBSOCKET = Reply(_websocket_accept, then_close=True)


@dataclass
class RawUpstream:
    """A plain TCP server that records each request it receives, byte for byte, and answers
    each with `reply`'s bytes. A request cut short is recorded as far as it came, marked.

    `settled()` waits until no connection is in the middle of a request: a gateway that
    refuses a request whose head it has already forwarded ends that upstream connection, and
    the test waits for that end (and its record) rather than for a while."""

    reply: Reply = PLAIN
    received: list[bytes] = field(default_factory=list)
    port: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    partway: int = 0  # connections in the middle of a request
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def settled(self) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.partway == 0)

    async def _mark(self, change: int) -> None:
        async with self.changed:
            self.partway += change
            self.changed.notify_all()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            while True:
                try:
                    first = await reader.readexactly(1)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # closed between requests
                await self._mark(+1)
                taken = bytearray(first)
                try:
                    head = first + await reader.readuntil(b"\r\n\r\n")
                    taken[:] = head
                    await self._read_body(reader, head, taken)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    if isinstance(exc, asyncio.IncompleteReadError):
                        taken += exc.partial
                    self.received.append(bytes(taken) + b"<connection ended mid-request>")
                    return
                finally:
                    await self._mark(-1)
                self.received.append(bytes(taken))
                reply = self.reply
                writer.write(reply.bytes_for(head))
                await writer.drain()
                if reply.then_close:
                    return
        except ConnectionError:
            pass
        finally:
            writer.close()
            self.tasks.discard(task)

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, head: bytes, taken: bytearray) -> None:
        fields = [line.partition(b":") for line in head.split(b"\r\n")[1:] if line]
        framing = {name.strip().lower(): value.strip().lower() for name, _, value in fields}
        if b"chunked" in framing.get(b"transfer-encoding", b""):
            while True:
                size_line = await reader.readuntil(b"\r\n")
                taken += size_line
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                        taken += trailer
                    taken += trailer
                    return
                taken += await reader.readexactly(size + 2)
        elif length := framing.get(b"content-length"):
            taken += await reader.readexactly(int(length))


# -- the two gateways --------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What a case may send, made when the gateways start (an access token lives ten minutes,
    and the suite may import this file long before it runs it)."""

    api_key: bytes
    jwt: bytes
    expired: bytes
    bad_signature: bytes  # a valid token with the last bytes of its signature changed

    @staticmethod
    def minted(api_key: str) -> Credentials:
        kid, _, secret = JWT_SECRET.partition(":")
        now = time.time()

        def token(**changes: object) -> bytes:
            claims = access_claims(now, email="ada@example.com", email_verified=True, **changes)
            header = {"kid": kid, "typ": "at+jwt"}
            return jwt.encode(claims, secret, algorithm="HS256", headers=header).encode()

        valid = token()
        bad_signature = valid[:-4] + (b"BBBB" if valid.endswith(b"AAAA") else b"AAAA")
        expired = token(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        return Credentials(api_key.encode(), valid, expired, bad_signature)


@dataclass
class Builds:
    compiled: GatewayProcess
    pure: GatewayProcess
    upstream: RawUpstream
    credentials: Credentials


async def _build_info(gateway: GatewayProcess) -> str:
    data = await raw_exchange(
        gateway.port, b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", timeout=WAIT
    )
    found = re.search(rb'gateway_build_info\{[^}]*compiled="(\w+)"', data)
    assert found, f"no gateway_build_info in the metrics of the gateway on {gateway.port}"
    return found.group(1).decode()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def builds(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Builds]:
    directory = tmp_path_factory.mktemp("differential")
    upstream = RawUpstream()
    async with tcp_server(upstream.serve) as upstream.port:
        # The tenant and its key, in the database both gateways will share.
        settings = auth_settings(
            directory,
            jwt_keyring=Keyring.parse(JWT_SECRET),
            service_keyring=Keyring.parse(SERVICE_SECRET),
        )
        core = AuthCore(settings)
        await core.start(follow=False)
        try:
            tenant = await core.tenants.create("Acme", [], ["127.0.0.0/8"], None, CallInfo())
            _, api_key = await core.keys.create(
                tenant.id, name="differential", actor_id=None, call=CallInfo()
            )
        finally:
            await core.close()
        shared = {
            "GATEWAY_DATABASE_URL": settings.database_url,
            "GATEWAY_JWT_SECRET": JWT_SECRET,
            "GATEWAY_SERVICE_SECRET": SERVICE_SECRET,
            "GATEWAY_BAN_THRESHOLD": "0",  # the refusals of the corpus would ban 127.0.0.1
            "GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8",  # not the peer: its X-Forwarded-For is not
            "GATEWAY_WATCH_CONFIG": "false",
        }
        table = ROUTES.replace("{port}", str(upstream.port))
        (directory / "compiled").mkdir()
        (directory / "pure").mkdir()
        # The compiled one as the pass runs everything (from a directory without the sources,
        # which conftest.py checked), the pure one with the checkout first on its path.
        compiled = start_gateway_process(
            table, directory / "compiled", env={**shared, "PYTHONPATH": ""}
        )
        try:
            pure = start_gateway_process(
                table, directory / "pure", env={**shared, "PYTHONPATH": str(ROOT)}
            )
            try:
                told = (await _build_info(compiled), await _build_info(pure))
                assert told == ("true", "false"), (
                    f"the gateways say compiled={told[0]} and compiled={told[1]}: "
                    "expected one of each"
                )
                yield Builds(compiled, pure, upstream, Credentials.minted(api_key))
            finally:
                pure.stop()
        finally:
            compiled.stop()
        # Both gateways gone: their upstream connections end, and with them their handlers.
        if upstream.tasks:
            await asyncio.wait(upstream.tasks, timeout=WAIT)


# -- a conversation and its outcome ------------------------------------------------------------


@dataclass(frozen=True)
class Await:
    """Read until these bytes have arrived before sending the next piece."""

    marker: bytes


Step = bytes | Await


@dataclass(frozen=True)
class Outcome:
    client: bytes  # everything the client received, to the gateway's close
    ending: str  # how the connection ended: "closed" or "reset"
    upstream: tuple[bytes, ...]  # each request the upstream received, in order


async def converse(port: int, steps: Sequence[Step]) -> tuple[bytes, str]:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    received = bytearray()

    async def read() -> bool:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), WAIT)
        except TimeoutError:
            raise AssertionError(
                f"the gateway neither closed nor sent more within {WAIT} s; had {bytes(received)!r}"
            ) from None
        received.extend(chunk)
        return bool(chunk)

    try:
        for step in steps:
            if isinstance(step, Await):
                while step.marker not in received:
                    assert await read(), f"closed before {step.marker!r}: {bytes(received)!r}"
            else:
                writer.write(step)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
        while await read():
            pass
        ending = "closed"
    except ConnectionResetError:
        ending = "reset"
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return bytes(received), ending


async def run(builds: Builds, gateway: GatewayProcess, case: Case) -> Outcome:
    builds.upstream.reply = case.reply
    builds.upstream.received = []
    client, ending = await converse(gateway.port, case.steps(builds.credentials))
    try:
        await asyncio.wait_for(builds.upstream.settled(), WAIT)
    except TimeoutError:
        raise AssertionError(
            f"{case.name}: an upstream request was still unfinished {WAIT} s after the client's "
            f"conversation ended: {builds.upstream.received!r}"
        ) from None
    return Outcome(client, ending, tuple(builds.upstream.received))


# -- masking -----------------------------------------------------------------------------------

_ID_FIELD = re.compile(rb"(?im)^(?:x-request-id|x-connection-id):[ \t]*([^\r\n]*?)[ \t]*\r$")
_ID_IN_BODY = re.compile(rb'"request_id":\s*"([^"]*)"')
_TRACEPARENT = re.compile(rb"(?im)^traceparent:[ \t]*00-([0-9a-f]{32})-([0-9a-f]{16})-")
_DATE = re.compile(rb"(?im)^(date:[ \t]*)([^\r\n]*)")
_TIME = re.compile(rb"(?im)^((?:x-gateway-timestamp|ratelimit-reset):[ \t]*)(\d+)")
_RETRY_AFTER = re.compile(rb"(?im)^(retry-after:[ \t]*)(\d+)")
_SIGNATURE = re.compile(rb"(?im)^(x-gateway-signature:[ \t]*v2,kid=[^,]*,aud=[^,]*,sig=)(\S+)")
_WS_KEY = re.compile(rb"(?im)^sec-websocket-key:[ \t]*(\S+)")


def _signature_checked(request: bytes) -> bytes:
    """The signature replaced by whether it is valid: its value differs by nature (it signs
    the request id and the time), its validity must not."""
    head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    method, target, _ = head.split("\r\n", 1)[0].split(" ", 2)
    headers: CIMultiDict[str] = CIMultiDict()
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers.add(name.strip(), value.strip())
    keys = derive_keys(Keyring.parse(SERVICE_SECRET).keys, AUDIENCE)
    try:
        verify(keys, AUDIENCE, method, target, headers)
        verdict = b"<valid signature>"
    except ContextError as exc:
        verdict = b"<INVALID signature: " + str(exc).encode() + b">"
    return _SIGNATURE.sub(lambda m: m.group(1) + verdict, request)


def mask(outcome: Outcome, sent: bytes) -> Outcome:
    """What differs by nature between two processes, replaced by a name; nothing else.

    - Request and websocket connection ids the gateway made (random, docs/forwarding.md): each
      value, wherever it appears (headers both ways, problem bodies), becomes `<id-N>`, N by
      order of first appearance, so that "the same id upstream and back" still shows. An id the
      client sent and the gateway kept is left as it is.
    - traceparent's trace id when the gateway started the trace, and its span id (random).
    - The time: `Date` the gateway adds (one the upstream sent is passed and left as it is),
      `X-Gateway-Timestamp`, and a rate limit's `RateLimit-Reset` and `Retry-After` (seconds
      from the moment of the request, by the gateway's clock; the upstream's own
      `Retry-After` is left as it is).
    - The context signature: it signs the request id and the timestamp, so it differs with them;
      it is checked against the context key instead, and replaced by the verdict.
    - The `Sec-WebSocket-Key` the gateway sends the upstream (random by RFC 6455; a client's
      key passed on a plain route is left as it is).
    """
    parts = [outcome.client, *outcome.upstream]
    names: dict[bytes, bytes] = {}

    def name(value: bytes, kind: bytes) -> bytes:
        if value in sent:
            return value
        return names.setdefault(value, b"<%s-%d>" % (kind, len(names) + 1))

    for part in parts:
        for found in [*_ID_FIELD.finditer(part), *_ID_IN_BODY.finditer(part)]:
            if found.group(1):
                name(found.group(1), b"id")
        for found in _TRACEPARENT.finditer(part):
            name(found.group(1), b"trace")
            name(found.group(2), b"span")
        for found in _WS_KEY.finditer(part):
            name(found.group(1), b"websocket-key")

    def masked(part: bytes, upstream: bool) -> bytes:
        if upstream:
            part = _signature_checked(part)
        for value, replacement in names.items():
            part = part.replace(value, replacement)
        part = _DATE.sub(
            lambda m: m.group(0) if m.group(2) == UPSTREAM_DATE else m.group(1) + b"<date>",
            part,
        )
        part = _RETRY_AFTER.sub(
            lambda m: (
                m.group(0) if m.group(2) == UPSTREAM_RETRY_AFTER else m.group(1) + b"<seconds>"
            ),
            part,
        )
        return _TIME.sub(lambda m: m.group(1) + b"<time>", part)

    return Outcome(
        masked(outcome.client, upstream=False),
        outcome.ending,
        tuple(masked(part, upstream=True) for part in outcome.upstream),
    )


def render(outcome: Outcome) -> str:
    """An outcome as lines to read: each line as a bytes literal; a long one cut, with its
    length and digest, so that two renderings differ whenever the bytes do."""

    def lines(data: bytes) -> list[str]:
        shown = []
        for line in data.splitlines(keepends=True):
            text = repr(line)
            if len(text) > 200:
                digest = hashlib.sha256(line).hexdigest()[:16]
                text = f"{text[:160]}... ({len(line)} bytes, sha256 {digest}...)"
            shown.append(f"    {text}")
        return shown

    out = [f"client received ({outcome.ending}):", *lines(outcome.client)]
    out.append(f"upstream received {len(outcome.upstream)} request(s):")
    for i, request in enumerate(outcome.upstream, 1):
        out += [f"  #{i}", *lines(request)]
    return "\n".join(out)


# -- the corpus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    pieces: Sequence[Step | Callable[[Credentials], bytes]]
    reply: Reply = PLAIN

    def steps(self, credentials: Credentials) -> list[Step]:
        return [piece(credentials) if callable(piece) else piece for piece in self.pieces]

    def sent(self, credentials: Credentials) -> bytes:
        return b"".join(step for step in self.steps(credentials) if isinstance(step, bytes))


def req(line: bytes, *fields: bytes, body: bytes = b"", close: bool = True) -> bytes:
    """A request: `line` (`GET /x` gets ` HTTP/1.1`), Host, `fields`, `Connection: close`
    unless told, then `body` as it is (its framing is the fields' business)."""
    if b" HTTP/" not in line:
        line += b" HTTP/1.1"
    head = [line, b"Host: gw.test", *fields]
    if close:
        head.append(b"Connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def sized(body: bytes) -> bytes:
    return b"Content-Length: %d" % len(body)


FORGED = [f"{name}: {value}".encode() for name, value in FORGED_IDENTITY.items()]
WS_HANDSHAKE = (
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    b"Sec-WebSocket-Version: 13",
)
SMUGGLED = b"GET /open/smuggled HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"
CHUNKED_BODY = b"4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n"
LARGE_BODY = bytes(range(256)) * 400  # 102,400 bytes: streamed, not held


CORPUS = [
    # -- ordinary requests and the upstream's answers --
    Case("get", [req(b"GET /open/items?q=1&q=2")]),
    Case("get-answer-with-date-and-cookies", [req(b"GET /open/dated")], DATED),
    Case(
        "post-sized-body",
        [
            req(
                b"POST /open/items",
                b"Content-Type: application/json",
                sized(b'{"a":1}'),
                body=b'{"a":1}',
            )
        ],
    ),
    # Read in one piece, the trailer is parsed before the forwarder reads the head: it is
    # dropped, never among the head's fields (tests/gateway/proxy/test_forward.py says so).
    Case(
        "post-chunked-body-with-trailer",
        [req(b"POST /open/items", b"Transfer-Encoding: chunked", body=CHUNKED_BODY)],
    ),
    Case("post-large-body", [req(b"POST /open/large", sized(LARGE_BODY), body=LARGE_BODY)]),
    Case("put-empty-body", [req(b"PUT /open/items/1", b"Content-Length: 0")]),
    Case("delete", [req(b"DELETE /open/items/1")]),
    Case("head", [req(b"HEAD /open/items")], HEAD_ANSWER),
    Case("options-asterisk", [req(b"OPTIONS *")]),
    Case("answer-chunked", [req(b"GET /open/chunked")], CHUNKED),
    Case("answer-hop-by-hop-headers", [req(b"GET /open/hop")], HOP_BY_HOP),
    Case("answer-disguised-framing-headers", [req(b"GET /open/disguised")], DISGUISED),
    Case("answer-204", [req(b"DELETE /open/items/2")], NO_CONTENT),
    Case("answer-304", [req(b"GET /open/cached", b'If-None-Match: "v1"')], NOT_MODIFIED),
    Case("answer-unsized-until-close", [req(b"GET /open/unsized")], UNSIZED),
    Case("answer-connection-close", [req(b"GET /open/closing")], CLOSING),
    Case("answer-large", [req(b"GET /open/large")], LARGE),
    Case("answer-503", [req(b"GET /open/down")], FAILING),
    Case("answer-418-own-reason", [req(b"GET /open/teapot")], TEAPOT),
    Case("answer-103-then-200", [req(b"GET /open/hints")], EARLY_HINTS),
    Case("answer-truncated", [req(b"GET /open/short")], TRUNCATED),
    Case("answer-garbage", [req(b"GET /open/garbage")], GARBAGE),
    Case("answer-content-length-and-chunked", [req(b"GET /open/both")], BOTH_FRAMINGS),
    Case("answer-non-ascii-header", [req(b"GET /open/latin")], NON_ASCII),
    Case("upstream-refuses-connections", [req(b"GET /dead/x")]),
    Case(
        "rate-limit-third-refused",
        [
            req(b"GET /limited/1", close=False)
            + req(b"GET /limited/2", close=False)
            + req(b"GET /limited/3")
        ],
    ),
    Case("no-route", [req(b"GET /nowhere")]),
    Case("method-not-allowed", [req(b"POST /getonly", b"Content-Length: 0")]),
    Case("strip-prefix", [req(b"GET /strip/a/b?c=d")]),
    Case("live", [req(b"GET /live")]),
    # -- authentication --
    Case("jwt-valid", [lambda c: req(b"GET /jwt/me", b"Authorization: Bearer " + c.jwt)]),
    Case(
        "jwt-bad-signature",
        [lambda c: req(b"GET /jwt/me", b"Authorization: Bearer " + c.bad_signature)],
    ),
    Case("jwt-expired", [lambda c: req(b"GET /jwt/me", b"Authorization: Bearer " + c.expired)]),
    Case("jwt-missing", [req(b"GET /jwt/me")]),
    Case("jwt-garbage", [req(b"GET /jwt/me", b"Authorization: Bearer not.a.jwt")]),
    Case("jwt-basic-scheme", [req(b"GET /jwt/me", b"Authorization: Basic dXNlcjpwYXNz")]),
    Case("jwt-in-query", [lambda c: req(b"GET /jwt/q?a=1&access_token=" + c.jwt + b"&b=2")]),
    Case("jwt-role-missing", [lambda c: req(b"GET /admin/x", b"Authorization: Bearer " + c.jwt)]),
    Case("api-key-valid", [lambda c: req(b"GET /key/items", b"X-API-Key: " + c.api_key)]),
    Case("api-key-wrong", [req(b"GET /key/items", b"X-API-Key: gwk_wrong")]),
    Case(
        "api-key-as-bearer",
        [lambda c: req(b"GET /key/items", b"Authorization: Bearer " + c.api_key)],
    ),
    Case("api-key-missing", [req(b"GET /key/items")]),
    Case(
        "credentials-pass-on-open-route",
        [req(b"GET /open/c", b"Authorization: Bearer x", b"X-API-Key: gwk_x", b"Cookie: a=b")],
    ),
    # -- paths --
    Case("path-percent-encoding", [req(b"GET /open/a%20b/%7Euser/%41?x=%2F&y=%zz")]),
    Case("path-dot-segments", [req(b"GET /open/a/../b/./c/")]),
    Case("path-dot-segments-into-another-route", [req(b"GET /open/../jwt/me")]),
    Case("path-encoded-dot-segments", [req(b"GET /open/%2e%2E/jwt/me")]),
    Case("path-double-slashes", [req(b"GET //open//a///b")]),
    Case("path-encoded-slash", [req(b"GET /open/a%2Fb%2f..%2fc")]),
    Case("path-backslashes", [req(b"GET /open\\..\\jwt")]),
    Case("path-very-long", [req(b"GET /open/" + b"a" * 8000)]),
    Case("path-encoded-nul-and-crlf", [req(b"GET /open/a%00b%0d%0aX-Injected:%20yes")]),
    Case("path-raw-control-char", [req(b"GET /open/a\x01b")]),
    Case("path-raw-utf8", [req("GET /open/café/日本".encode())]),
    Case("path-encoded-utf8-and-invalid", [req(b"GET /open/caf%C3%A9/%FF%FE")]),
    Case("path-absolute-form", [req(b"GET http://evil.test/open/x")]),
    Case("path-fragment", [req(b"GET /open/x#frag")]),
    Case("path-no-leading-slash", [req(b"GET open/x")]),
    # -- request smuggling --
    Case(
        "smuggle-cl-te",
        [
            req(
                b"POST /open/s",
                b"Content-Length: 5",
                b"Transfer-Encoding: chunked",
                close=False,
                body=b"0\r\n\r\n" + SMUGGLED,
            )
        ],
    ),
    Case(
        "smuggle-te-cl",
        [
            req(
                b"POST /open/s",
                b"Transfer-Encoding: chunked",
                b"Content-Length: 5",
                close=False,
                body=b"0\r\n\r\n" + SMUGGLED,
            )
        ],
    ),
    Case(
        "smuggle-two-content-lengths",
        [
            req(
                b"POST /open/s",
                b"Content-Length: 0",
                b"Content-Length: 69",
                close=False,
                body=SMUGGLED,
            )
        ],
    ),
    Case(
        "smuggle-same-content-length-twice",
        [req(b"POST /open/s", b"Content-Length: 3", b"Content-Length: 3", body=b"abc")],
    ),
    Case(
        "smuggle-content-length-list", [req(b"POST /open/s", b"Content-Length: 3, 3", body=b"abc")]
    ),
    Case("smuggle-content-length-plus", [req(b"POST /open/s", b"Content-Length: +3", body=b"abc")]),
    Case(
        "smuggle-te-xchunked",
        [
            req(
                b"POST /open/s",
                b"Transfer-Encoding: xchunked",
                close=False,
                body=b"0\r\n\r\n" + SMUGGLED,
            )
        ],
    ),
    Case(
        "smuggle-te-space-before-colon",
        [
            req(
                b"POST /open/s",
                b"Transfer-Encoding : chunked",
                close=False,
                body=b"0\r\n\r\n" + SMUGGLED,
            )
        ],
    ),
    Case(
        "smuggle-te-chunked-then-identity",
        [
            req(
                b"POST /open/s",
                b"Transfer-Encoding: chunked, identity",
                close=False,
                body=b"0\r\n\r\n" + SMUGGLED,
            )
        ],
    ),
    Case(
        "smuggle-te-tab",
        [req(b"POST /open/s", b"Transfer-Encoding:\tchunked", body=b"3\r\nabc\r\n0\r\n\r\n")],
    ),
    Case(
        "smuggle-te-disguised-underscore",
        [
            req(
                b"POST /open/s",
                b"Transfer_Encoding: chunked",
                b"Content-Length: 5",
                body=b"0\r\n\r\n",
            )
        ],
    ),
    Case(
        "smuggle-chunk-size-overflow",
        [
            req(
                b"POST /open/s",
                b"Transfer-Encoding: chunked",
                close=False,
                body=b"1" + b"0" * 17 + b"1\r\na\r\n0\r\n\r\n" + SMUGGLED,
            )
        ],
    ),
    Case(
        "smuggle-chunk-size-negative",
        [
            req(
                b"POST /open/s",
                b"Transfer-Encoding: chunked",
                close=False,
                body=b"-1\r\na\r\n0\r\n\r\n" + SMUGGLED,
            )
        ],
    ),
    Case("smuggle-bare-lf", [b"GET /open/s HTTP/1.1\nHost: gw.test\n\n" + SMUGGLED]),
    Case(
        "smuggle-bare-lf-in-a-field",
        [b"GET /open/s HTTP/1.1\r\nHost: gw.test\nContent-Length: 69\r\n\r\n" + SMUGGLED],
    ),
    Case(
        "smuggle-obs-fold",
        [
            b"GET /open/s HTTP/1.1\r\nHost: gw.test\r\nX-A: a\r\n"
            b" Transfer-Encoding: chunked\r\n\r\n" + SMUGGLED
        ],
    ),
    Case("smuggle-nul-in-a-value", [req(b"GET /open/s", b"X-Nul: a\x00b")]),
    Case("http-1.1-without-host", [b"GET /open/x HTTP/1.1\r\nConnection: close\r\n\r\n"]),
    Case("two-hosts", [req(b"GET /open/x", b"Host: other.test")]),
    Case(
        "two-authorizations",
        [req(b"GET /open/x", b"Authorization: Bearer a", b"Authorization: Bearer b")],
    ),
    # -- forged identity and context --
    Case("forged-identity-open-route", [req(b"GET /open/who", *FORGED)]),
    Case(
        "forged-identity-jwt-route",
        [lambda c: req(b"GET /jwt/who", b"Authorization: Bearer " + c.jwt, *FORGED)],
    ),
    Case(
        "forged-identity-api-key-route",
        [lambda c: req(b"GET /key/who", *FORGED, b"X-API-Key: " + c.api_key)],
    ),
    Case(
        "forged-identity-lower-case-and-twice",
        [
            req(
                b"GET /open/who",
                b"x-user-id: a",
                b"X-USER-ID: b",
                b"x-gateway-signature: v2,kid=s1,aud=up,sig=x",
            )
        ],
    ),
    Case(
        "forwarded-headers-from-untrusted-peer",
        [
            req(
                b"GET /open/ip",
                b"X-Forwarded-For: 10.1.2.3, 203.0.113.9",
                b"X-Forwarded-Host: evil.test",
                b"X-Forwarded-Proto: https",
                b"X-Real-IP: 10.9.9.9",
                b"Forwarded: for=10.0.0.1",
            )
        ],
    ),
    Case("request-id-valid-kept", [req(b"GET /open/rid", b"X-Request-Id: client-id_1.2")]),
    Case("request-id-invalid-replaced", [req(b"GET /open/rid", b"X-Request-Id: bad id!")]),
    Case(
        "traceparent-valid",
        [
            req(
                b"GET /open/t",
                b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
        ],
    ),
    Case("traceparent-invalid", [req(b"GET /open/t", b"traceparent: 00-zz-yy-01")]),
    Case(
        "request-hop-by-hop-and-connection-named",
        [
            req(
                b"GET /open/hop",
                b"Connection: keep-alive, X-Secret, close",
                b"X-Secret: 1",
                b"Keep-Alive: 5",
                b"TE: trailers",
                b"Trailer: X-T",
                b"Proxy-Authorization: Basic eDp5",
                b"Proxy-Connection: keep-alive",
                b"Upgrade: h2c",
                b"X-Kept: yes",
                close=False,
            )
        ],
    ),
    Case(
        "underscores-dropped",
        [req(b"GET /open/u", b"X_Custom: a", b"X_User_Id: forged", b"Content_Length: 5")],
    ),
    Case(
        "underscores-kept-where-allowed",
        [
            req(
                b"GET /under/u",
                b"X_Custom: a",
                b"X_User_Id: forged",
                b"Transfer_Encoding: chunked",
                b"X_Forwarded_For: 1.2.3.4",
                b"Connection: close, X_Custom",
                close=False,
            )
        ],
    ),
    Case(
        "header-case-and-order-kept",
        [
            req(
                b"GET /open/h",
                b"x-lower: 1",
                b"X-UPPER: 2",
                b"X-Mixed: three",
                b"X-Repeat: a",
                b"X-Repeat: b",
                b"X-Empty:",
                b"X-Spaces:   v   ",
            )
        ],
    ),
    # -- sizes --
    Case("header-value-non-ascii", [req(b"GET /open/h", b"X-Name: caf\xc3\xa9 \xff")]),
    Case("header-too-large", [req(b"GET /open/x", b"X-Big: " + b"a" * 40_000)]),
    Case("too-many-headers", [req(b"GET /open/x", *(b"X-H%d: v" % i for i in range(150)))]),
    Case("target-too-long", [req(b"GET /open/" + b"a" * 40_000)]),
    Case("content-length-huge", [req(b"POST /open/x", b"Content-Length: 99999999999")]),
    Case("content-length-u64-max", [req(b"POST /open/x", b"Content-Length: 18446744073709551615")]),
    Case(
        "content-length-past-u64", [req(b"POST /open/x", b"Content-Length: 18446744073709551616")]
    ),
    Case("body-over-max-body", [req(b"POST /small/x", sized(b"b" * 100), body=b"b" * 100)]),
    Case(
        "chunked-body-over-max-body",
        [
            req(
                b"POST /small/x",
                b"Transfer-Encoding: chunked",
                body=b"40\r\n" + b"c" * 64 + b"\r\n0\r\n\r\n",
            )
        ],
    ),
    # -- versions, pipelining, Expect --
    Case("http-1.0", [b"GET /open/old HTTP/1.0\r\n\r\n"]),
    Case(
        "http-1.0-keep-alive",
        [
            b"GET /open/old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            b"GET /open/old2 HTTP/1.0\r\n\r\n"
        ],
    ),
    Case("http-2.0-refused", [b"GET /open/x HTTP/2.0\r\nHost: gw.test\r\n\r\n"]),
    Case("http-2-preface", [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]),
    Case(
        "pipelined-three",
        [req(b"GET /open/1", close=False) + req(b"GET /open/2", close=False) + req(b"GET /open/3")],
    ),
    Case(
        "pipelined-post-then-get",
        [req(b"POST /open/1", sized(b"abc"), close=False, body=b"abc") + req(b"GET /open/2")],
    ),
    Case(
        "pipelined-refused-in-the-middle",
        [req(b"GET /open/1", close=False) + req(b"GET /jwt/2", close=False) + req(b"GET /open/3")],
    ),
    Case(
        "expect-100-continue",
        [
            req(b"POST /open/e", b"Expect: 100-continue", sized(b"hello")),
            Await(b"100 Continue\r\n\r\n"),
            b"hello",
        ],
    ),
    Case(
        "expect-unknown",
        [req(b"POST /open/e", b"Expect: something-else", sized(b"hi"), body=b"hi")],
    ),
    Case(
        "expect-100-continue-refused-by-auth",
        [req(b"POST /jwt/e", b"Expect: 100-continue", sized(b"hello"))],
    ),
    Case(
        "expect-100-continue-over-max-body",
        [req(b"POST /small/e", b"Expect: 100-continue", sized(b"x" * 100))],
    ),
    # -- websockets --
    Case("websocket-upgrade", [req(b"GET /ws/chat", *WS_HANDSHAKE, close=False)], WEBSOCKET),
    Case(
        "websocket-bad-version",
        [req(b"GET /ws/chat", *WS_HANDSHAKE[:3], b"Sec-WebSocket-Version: 8", close=False)],
    ),
    Case("websocket-on-a-plain-route", [req(b"GET /open/chat", *WS_HANDSHAKE, close=False)]),
]


def _params() -> list[object]:
    names = [case.name for case in CORPUS]
    assert len(names) == len(set(names)), "two cases with one name"
    return [pytest.param(case, id=case.name) for case in CORPUS]


@pytest.mark.parametrize("case", _params())
async def test_both_builds_answer_and_forward_alike(builds: Builds, case: Case) -> None:
    sent = case.sent(builds.credentials)
    compiled = mask(await run(builds, builds.compiled, case), sent)
    pure = mask(await run(builds, builds.pure, case), sent)
    assert render(compiled) == render(pure), (
        f"{case.name}: the builds differ\n--- compiled\n{render(compiled)}\n--- pure\n"
        f"{render(pure)}"
    )
    assert compiled == pure, f"{case.name}: the builds differ in bytes the rendering cut"
