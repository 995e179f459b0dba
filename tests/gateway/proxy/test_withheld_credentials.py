"""The gateway's credential never reaches the upstream (docs/forwarding.md: credentials stay
at the gateway): not the Authorization that carried it, not X-API-Key, not the access_token
query parameter, unless the route says `forward_credentials: true`; on `auth: none` nothing is
the gateway's and everything passes. What the upstream received is read off the wire, and the
signed context must verify over the path and query exactly as they arrived."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from auth_core.service import CallInfo
from auth_core.tokens import Keyring
from gateway.context import Context, derive_keys, verify
from tests.gateway.proxy.conftest import OK, RawUpstream, Received, Reply, raw_upstream, send_raw
from tests.support import (
    RunningGateway,
    auth_settings,
    cases,
    quiet_settings,
    routes,
    running_gateway,
)

CALL = CallInfo()
PASSWORD = "correct horse battery"
SERVICE_SECRET = "s1:" + "w" * 48

ROUTES = (
    "{name: jwt, path: /jwt, upstream: up, auth: jwt}",
    "{name: key, path: /key, upstream: up, auth: api_key}",
    "{name: pat, path: /pat, upstream: up, auth: pat}",
    "{name: any, path: /any, upstream: up, auth: any}",
    "{name: open, path: /open, upstream: up, auth: none}",
    "{name: own-jwt, path: /own-jwt, upstream: up, auth: jwt, forward_credentials: true}",
    "{name: own-key, path: /own-key, upstream: up, auth: api_key, forward_credentials: true}",
    "{name: socket, path: /socket, upstream: up, auth: jwt, websocket: true}",
    "{name: open-socket, path: /open-socket, upstream: up, auth: none, websocket: true}",
)


@dataclass(frozen=True)
class Credentials:
    jwt: str
    key: str
    pat: str


@dataclass
class Stack:
    gateway: RunningGateway
    upstream: RawUpstream
    credentials: Credentials


def answer(request: Received) -> Reply:
    """OK to a plain request; the 101 an upstream gives to a websocket handshake."""
    key = dict(fields(request)).get(b"sec-websocket-key")
    if key is None:
        return Reply(OK)
    accept = base64.b64encode(
        hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()  # noqa: S324
    )
    return Reply(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


@asynccontextmanager
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    settings = quiet_settings(
        auth=auth_settings(tmp_path, service_keyring=Keyring.parse(SERVICE_SECRET)),
    )
    async with raw_upstream(answer) as upstream:
        table = routes({"up": [upstream.url]}, *ROUTES)
        async with running_gateway(table, tmp_path, settings) as gw:
            core = gw.core
            tenant = await core.tenants.create("Acme", [], ["127.0.0.0/8"], None, CALL)
            _, key = await core.keys.create(tenant.id, actor_id=None, call=CALL)
            user = await core.accounts.create("ada@example.com", PASSWORD, verified=True)
            _, pat = await core.pats.create(user.id, {"name": "cli"}, CALL)
            jwt = (await core.sessions.login("ada@example.com", PASSWORD, CALL)).access_token
            yield Stack(gw, upstream, Credentials(jwt, key, pat))


def fields(request: Received) -> list[tuple[bytes, bytes]]:
    """The header fields the upstream received, names lower-case, in order."""
    lines = request.head.split(b"\r\n")[1:]
    pairs = [line.partition(b":") for line in lines if line]
    return [(name.strip().lower(), value.strip()) for name, _, value in pairs]


def upstream_context(gw: RunningGateway, request: Received, upstream: str = "up") -> Context:
    """The signed context as the upstream `upstream` verifies it, over the method and target it
    received. The one place that knows how a downstream service checks a signature (its v2
    form takes the upstream's name as audience)."""
    core = gw.core
    assert core.service_keyring is not None
    headers = {name.decode(): value.decode() for name, value in fields(request)}
    return verify(
        derive_keys(core.service_keyring.keys, upstream),
        upstream,
        request.method.decode(),
        request.target.decode(),
        headers,
    )


# (description, path and query, header lines from the credentials, route authenticates,
#  header names the upstream must not get, (name, value) lines it must get as sent, target
#  it must receive)
Lines = Callable[[Credentials], list[bytes]]
CASES: list[tuple[str, bytes, Lines, set[bytes], list[bytes], bytes]] = [
    (
        "jwt route: the bearer token",
        b"/jwt/a",
        lambda c: [b"Authorization: Bearer " + c.jwt.encode()],
        {b"authorization"},
        [],
        b"/jwt/a",
    ),
    (
        "api_key route: X-API-Key in any case",
        b"/key/a",
        lambda c: [b"x-API-key: " + c.key.encode()],
        {b"x-api-key"},
        [],
        b"/key/a",
    ),
    (
        "api_key route: the key as a bearer token",
        b"/key/a",
        lambda c: [b"Authorization: Bearer " + c.key.encode()],
        {b"authorization"},
        [],
        b"/key/a",
    ),
    (
        "pat route: the token, the scheme in capitals",
        b"/pat/a",
        lambda c: [b"AUTHORIZATION: BEARER " + c.pat.encode()],
        {b"authorization"},
        [],
        b"/pat/a",
    ),
    (
        "any route: a key used, a JWT beside it is withheld as well",
        b"/any/a",
        lambda c: [b"X-API-Key: " + c.key.encode(), b"Authorization: Bearer " + c.jwt.encode()],
        {b"authorization", b"x-api-key"},
        [],
        b"/any/a",
    ),
    (
        "api_key route: a Service scheme beside the key is withheld",
        b"/key/a",
        lambda c: [b"X-API-Key: " + c.key.encode(), b"Authorization: service gws_other"],
        {b"authorization", b"x-api-key"},
        [],
        b"/key/a",
    ),
    (
        "api_key route: Basic is not the gateway's and passes",
        b"/key/a",
        lambda c: [b"X-API-Key: " + c.key.encode(), b"Authorization: Basic dXNlcjpwYXNz"],
        {b"x-api-key"},
        [b"Authorization: Basic dXNlcjpwYXNz"],
        b"/key/a",
    ),
    (
        "jwt route: access_token leaves the query, the rest stays byte for byte",
        b"/jwt/q?a=1&access_token=T&b=%zz&c=&d=a+b%20c&access_token=U&e",
        lambda c: [b"Authorization: Bearer " + c.jwt.encode()],
        {b"authorization"},
        [],
        b"/jwt/q?a=1&b=%zz&c=&d=a+b%20c&e",
    ),
    (
        "jwt route: an encoded name is still access_token",
        b"/jwt/q?access%5Ftoken=T&x=%41",
        lambda c: [b"Authorization: Bearer " + c.jwt.encode()],
        {b"authorization"},
        [],
        b"/jwt/q?x=%41",
    ),
    (
        "jwt route: a query of only access_token leaves no question mark",
        b"/jwt/q?access_token=T",
        lambda c: [b"Authorization: Bearer " + c.jwt.encode()],
        {b"authorization"},
        [],
        b"/jwt/q",
    ),
    (
        "jwt route: look-alike parameters are not access_token",
        b"/jwt/q?my_access_token=1&access_tokens=2&Access_Token=3",
        lambda c: [b"Authorization: Bearer " + c.jwt.encode()],
        {b"authorization"},
        [],
        b"/jwt/q?my_access_token=1&access_tokens=2&Access_Token=3",
    ),
    (
        "auth: none: nothing is the gateway's, all of it passes",
        b"/open/a?x=1&access_token=T",
        lambda c: [
            b"Authorization: Bearer " + c.jwt.encode(),
            b"X-API-Key: " + c.key.encode(),
        ],
        set(),
        [],
        b"/open/a?x=1&access_token=T",
    ),
    (
        "forward_credentials: the bearer token and the query pass",
        b"/own-jwt/a?access_token=T&x=1",
        lambda c: [b"Authorization: Bearer " + c.jwt.encode()],
        set(),
        [],
        b"/own-jwt/a?access_token=T&x=1",
    ),
    (
        "forward_credentials: the API key passes",
        b"/own-key/a",
        lambda c: [b"X-API-Key: " + c.key.encode()],
        set(),
        [],
        b"/own-key/a",
    ),
]


@pytest.mark.parametrize(("target", "lines", "withheld", "kept", "received"), cases(CASES))
async def test_what_the_upstream_receives_of_the_credential(
    tmp_path: Path,
    target: bytes,
    lines: Lines,
    withheld: set[bytes],
    kept: list[bytes],
    received: bytes,
) -> None:
    async with stack(tmp_path) as s:
        sent = lines(s.credentials)
        head = b"GET " + target + b" HTTP/1.1\r\nHost: gw.test\r\n"
        data = head + b"".join(line + b"\r\n" for line in sent) + b"X-Kept: yes\r\n\r\n"
        response = await send_raw(s.gateway.port, data)
        assert response.status == 200, response.body
        (request,) = s.upstream.received
        # The signature covers the path and query as the upstream received them.
        context = upstream_context(s.gateway, request)
    assert context.request_id is not None
    assert request.target == received
    got = fields(request)
    names = {name for name, _ in got}
    assert not names & withheld
    assert (b"x-kept", b"yes") in got
    # What is not withheld arrives as it was sent, every credential line among it.
    as_sent = [line.partition(b":") for line in sent]
    for name, _, value in as_sent:
        lowered = name.lower()
        if lowered not in withheld:
            assert (lowered, value.strip()) in got
    for line in kept:
        name, _, value = line.partition(b":")
        assert (name.lower(), value.strip()) in got
    for secret in (s.credentials.jwt, s.credentials.key, s.credentials.pat):
        if secret.encode() in request.head:
            assert withheld == set(), "a credential reached the upstream of a withholding route"


def websocket_handshake(target: bytes, *lines: bytes) -> bytes:
    return (
        b"GET " + target + b" HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        + b"".join(line + b"\r\n" for line in lines)
        + b"\r\n"
    )


WEBSOCKETS = [
    # (description, target, header lines, target the upstream receives)
    (
        "the token in the query",
        "/socket/ws?room=1&access_token={jwt}&x=%41",
        [],
        b"/socket/ws?room=1&x=%41",
    ),
    (
        "the token in the subprotocol list",
        "/socket/ws?room=1",
        [b"Sec-WebSocket-Protocol: bearer, {jwt}, chat"],
        b"/socket/ws?room=1",
    ),
    (
        "the token in Authorization, another in the query",
        "/socket/ws?access_token=other",
        [b"Authorization: Bearer {jwt}"],
        b"/socket/ws",
    ),
    (
        "auth: none: the query passes",
        "/open-socket/ws?access_token=T",
        [],
        b"/open-socket/ws?access_token=T",
    ),
]


@pytest.mark.parametrize(("target", "lines", "received"), cases(WEBSOCKETS))
async def test_a_websocket_handshake_carries_no_credential_upstream(
    tmp_path: Path, target: str, lines: list[bytes], received: bytes
) -> None:
    async with stack(tmp_path) as s:
        jwt = s.credentials.jwt
        filled = [line.replace(b"{jwt}", jwt.encode()) for line in lines]
        data = websocket_handshake(target.format(jwt=jwt).encode(), *filled)
        response = await send_raw(s.gateway.port, data)
        assert response.status == 101, response.body
        (request,) = s.upstream.received
        context = upstream_context(s.gateway, request)
    assert request.target == received
    assert jwt.encode() not in request.head
    assert b"authorization" not in {name for name, _ in fields(request)}
    assert context.auth_method == ("none" if target.startswith("/open") else "jwt")
