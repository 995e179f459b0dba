"""Signed context headers (SPEC section 7): gateway.context's signer, verifier and the aiohttp
middleware that downstream services use."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import pytest
from aiohttp import ClientSession, web

from gateway.context import (
    SIGNED,
    Context,
    ContextError,
    Signer,
    context_middleware,
    gateway_context_key,
    sign,
    verify,
)
from tests.support import LOOPBACK, raw_request

NOW = 1_800_000_000.0
KEYS = {
    "k1": b"the-current-secret-of-at-least-32-bytes",
    "k0": b"the-previous-secret-still-verifying-!!",
}
VALUES = {
    "x-request-id": "req-1",
    "x-auth-method": "jwt",
    "x-user-id": "usr_1",
    "x-user-email": "ann@example.com",
    "x-user-roles": "user,admin",
    "x-tenant-id": "ten_1",
    "x-session-id": "ses_1",
    "x-credential-id": "key_1",
}
METHOD = "POST"
PATH = "/orders?id=7"


def signed(
    values: Mapping[str, str] = VALUES,
    *,
    method: str = METHOD,
    path: str = PATH,
    kid: str = "k1",
    secret: bytes | None = None,
    timestamp: float = NOW,
) -> dict[str, str]:
    """The headers an upstream receives: the values (Title-Case names) and the signature."""
    stamp, signature = sign(
        kid, KEYS[kid] if secret is None else secret, method, path, values, int(timestamp)
    )
    headers = {name.title(): value for name, value in values.items()}
    headers["X-Gateway-Timestamp"] = stamp
    headers["X-Gateway-Signature"] = signature
    return headers


def refused(headers: Mapping[str, str], *, method: str = METHOD, path: str = PATH) -> str:
    """Why verify() refuses the headers (it must)."""
    with pytest.raises(ContextError) as caught:
        verify(KEYS, method, path, headers, now=NOW)
    return str(caught.value)


# -- the good case -----------------------------------------------------------------------------


def test_a_good_signature_gives_the_context() -> None:
    context = verify(KEYS, METHOD, PATH, signed(), now=NOW)
    assert context == Context(
        auth_method="jwt",
        request_id="req-1",
        user_id="usr_1",
        email="ann@example.com",
        roles=("user", "admin"),
        tenant_id="ten_1",
        session_id="ses_1",
        credential_id="key_1",
        timestamp=int(NOW),
    )


def test_only_the_headers_present_are_signed() -> None:
    values = {"x-request-id": "req-2", "x-auth-method": "none"}
    context = verify(KEYS, "GET", "/", signed(values, method="GET", path="/"), now=NOW)
    assert context.auth_method == "none"
    assert (context.user_id, context.email, context.tenant_id) == (None, None, None)
    assert context.roles == ()


def test_the_signature_is_the_documented_formula() -> None:
    """What examples/README.md tells services in other languages to compute."""
    headers = signed()
    lines = ["v1", METHOD, PATH, headers["X-Gateway-Timestamp"]]
    lines += [f"{name}:{VALUES[name]}" for name in sorted(VALUES)]
    mac = hmac.new(KEYS["k1"], "\n".join(lines).encode(), hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert headers["X-Gateway-Signature"] == f"v1,kid=k1,sig={expected}"


@pytest.mark.parametrize(
    "case",
    [str.lower, str.upper, str.title, str.swapcase],
    ids=["lower", "upper", "title", "swapped"],
)
def test_header_names_in_any_case(case: Callable[[str], str]) -> None:
    headers = {case(name): value for name, value in signed().items()}
    assert verify(KEYS, METHOD, PATH, headers, now=NOW).user_id == "usr_1"


# -- tampering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SIGNED)
def test_each_signed_header_changed_is_refused(name: str) -> None:
    headers = signed()
    headers[name.title()] += "x"
    assert refused(headers) == "the signature does not match"


@pytest.mark.parametrize("name", SIGNED)
def test_each_signed_header_removed_is_refused(name: str) -> None:
    headers = signed()
    del headers[name.title()]
    assert refused(headers) == "the signature does not match"


@pytest.mark.parametrize("name", ["x-tenant-id", "x-credential-id", "x-user-email"])
def test_a_signed_header_added_is_refused(name: str) -> None:
    values = {k: v for k, v in VALUES.items() if k != name}
    headers = signed(values)
    headers[name.title()] = "forged"
    assert refused(headers) == "the signature does not match"


def test_unsigned_headers_do_not_matter() -> None:
    headers = {**signed(), "X-User-Admin": "yes", "Cookie": "a=b"}
    assert verify(KEYS, METHOD, PATH, headers, now=NOW).user_id == "usr_1"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", PATH),
        ("post", PATH),
        (METHOD, "/orders?id=8"),
        (METHOD, "/orders"),
        (METHOD, "/orders/?id=7"),
        (METHOD, "/other?id=7"),
    ],
    ids=["other method", "method case", "other query", "no query", "trailing slash", "other path"],
)
def test_another_method_or_path_is_refused(method: str, path: str) -> None:
    assert refused(signed(), method=method, path=path) == "the signature does not match"


def test_the_timestamp_is_signed() -> None:
    headers = signed()
    headers["X-Gateway-Timestamp"] = str(int(NOW) - 1)
    assert refused(headers) == "the signature does not match"


# -- time --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (-61, False),
        (-60, True),
        (-59, True),
        (0, True),
        (5, True),
        (6, False),
        (-3600, False),
    ],
    ids=[
        "61 s old",
        "60 s old",
        "59 s old",
        "now",
        "5 s ahead",
        "6 s ahead",
        "an hour old",
    ],
)
def test_the_signature_is_fresh(offset: int, accepted: bool) -> None:
    headers = signed(timestamp=NOW + offset)
    if accepted:
        assert verify(KEYS, METHOD, PATH, headers, now=NOW).timestamp == int(NOW) + offset
    else:
        assert refused(headers) == "the signature is too old or from the future"


def test_the_clock_is_read_when_no_time_is_given() -> None:
    now = time.time()
    assert verify(KEYS, METHOD, PATH, signed(timestamp=now)).user_id == "usr_1"
    with pytest.raises(ContextError):
        verify(KEYS, METHOD, PATH, signed(timestamp=now - 120))


# -- keys --------------------------------------------------------------------------------------


def test_an_unknown_kid_is_refused() -> None:
    headers = signed(kid="k1")
    headers["X-Gateway-Signature"] = headers["X-Gateway-Signature"].replace("kid=k1", "kid=k9")
    assert refused(headers) == "signed with an unknown key"


def test_a_known_kid_with_another_secret_is_refused() -> None:
    headers = signed(secret=b"an-attacker-guess-of-32-bytes-or-more!")
    assert refused(headers) == "the signature does not match"


def test_a_signature_moved_to_another_kid_is_refused() -> None:
    headers = signed(kid="k1")
    headers["X-Gateway-Signature"] = headers["X-Gateway-Signature"].replace("kid=k1", "kid=k0")
    assert refused(headers) == "the signature does not match"


@pytest.mark.parametrize("kid", ["k1", "k0"])
def test_rotation_every_key_verifies(kid: str) -> None:
    """GATEWAY_SERVICE_SECRET=k1:new,k0:old: the gateway signs with k1; services that know
    both accept either while the change rolls out."""
    assert verify(KEYS, METHOD, PATH, signed(kid=kid), now=NOW).user_id == "usr_1"


def test_rotation_a_retired_key_stops_verifying() -> None:
    headers = signed(kid="k0")
    assert refused_with({"k1": KEYS["k1"]}, headers) == "signed with an unknown key"


def refused_with(keys: Mapping[str, bytes], headers: Mapping[str, str]) -> str:
    with pytest.raises(ContextError) as caught:
        verify(keys, METHOD, PATH, headers, now=NOW)
    return str(caught.value)


# -- missing or malformed ----------------------------------------------------------------------


def _without(name: str) -> dict[str, str]:
    headers = signed()
    del headers[name]
    return headers


def _with(name: str, value: str) -> dict[str, str]:
    return {**signed(), name: value}


MALFORMED = [
    # (description, headers, reason)
    ("no headers at all", {}, "no gateway signature"),
    ("no signature", _without("X-Gateway-Signature"), "no gateway signature"),
    ("empty signature", _with("X-Gateway-Signature", ""), "no gateway signature"),
    ("another version", _with("X-Gateway-Signature", "v2,kid=k1,sig=abc"), "no gateway signature"),
    ("no kid", _with("X-Gateway-Signature", "v1,sig=abc"), "no gateway signature"),
    ("no sig", _with("X-Gateway-Signature", "v1,kid=k1"), "no gateway signature"),
    ("bare version", _with("X-Gateway-Signature", "v1"), "no gateway signature"),
    ("no timestamp", _without("X-Gateway-Timestamp"), "no gateway timestamp"),
    ("empty timestamp", _with("X-Gateway-Timestamp", ""), "no gateway timestamp"),
    ("negative timestamp", _with("X-Gateway-Timestamp", "-5"), "no gateway timestamp"),
    ("fractional timestamp", _with("X-Gateway-Timestamp", "1.5"), "no gateway timestamp"),
    ("empty sig", _with("X-Gateway-Signature", "v1,kid=k1,sig="), "the signature does not match"),
]


@pytest.mark.parametrize(
    ("headers", "reason"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_missing_or_malformed_is_refused(headers: dict[str, str], reason: str) -> None:
    assert refused(headers) == reason


NON_ASCII = [
    ("superscript digit timestamp", _with("X-Gateway-Timestamp", "\u00b2")),
    ("non-ASCII sig", _with("X-Gateway-Signature", "v1,kid=k1,sig=\u00fc")),
]


@pytest.mark.parametrize("headers", [case[1] for case in NON_ASCII], ids=[c[0] for c in NON_ASCII])
def test_non_ascii_junk_is_a_context_error(headers: dict[str, str]) -> None:
    with pytest.raises(ContextError):
        verify(KEYS, METHOD, PATH, headers, now=NOW)


# -- the aiohttp middleware on a real server ----------------------------------------------------


async def whoami(request: web.Request) -> web.Response:
    context: Context = request[gateway_context_key()]
    return web.json_response(
        {
            "user_id": context.user_id,
            "roles": list(context.roles),
            "auth_method": context.auth_method,
            "tenant_id": context.tenant_id,
            "header_user_id": request.headers.get("X-User-Id"),
        }
    )


@asynccontextmanager
async def protected_service() -> AsyncIterator[str]:
    """A downstream aiohttp service guarded by context_middleware; yields its base URL."""
    app = web.Application(middlewares=[context_middleware(KEYS)])
    app.router.add_route("*", "/{tail:.*}", whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        await runner.cleanup()


def live(values: Mapping[str, str] = VALUES, **kwargs: str) -> dict[str, str]:
    """Headers signed now (the middleware reads the clock)."""
    return signed(values, timestamp=time.time(), **kwargs)  # type: ignore[arg-type]


async def test_middleware_passes_a_valid_request_with_its_context(client: ClientSession) -> None:
    async with (
        protected_service() as url,
        client.post(f"{url}/orders?id=7", headers=live()) as response,
    ):
        assert response.status == 200
        document = await response.json()
    assert document == {
        "user_id": "usr_1",
        "roles": ["user", "admin"],
        "auth_method": "jwt",
        "tenant_id": "ten_1",
        "header_user_id": "usr_1",
    }


def _stale() -> dict[str, str]:
    return signed(timestamp=time.time() - 61)


MIDDLEWARE_REFUSALS: list[tuple[str, str, str, Callable[[], dict[str, str]]]] = [
    # (description, method, path, headers made when the test runs: the clock matters)
    ("no context headers", "POST", "/orders?id=7", dict),
    ("another path", "POST", "/orders?id=8", live),
    ("another method", "PUT", "/orders?id=7", live),
    ("tampered user", "POST", "/orders?id=7", lambda: {**live(), "X-User-Id": "usr_2"}),
    ("stale", "POST", "/orders?id=7", _stale),
    (
        "unknown kid",
        "POST",
        "/orders?id=7",
        lambda: live(kid="k0") | {"X-Gateway-Signature": "v1,kid=k9,sig=a"},
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "make"),
    [case[1:] for case in MIDDLEWARE_REFUSALS],
    ids=[case[0] for case in MIDDLEWARE_REFUSALS],
)
async def test_middleware_refuses_with_401(
    client: ClientSession, method: str, path: str, make: Callable[[], dict[str, str]]
) -> None:
    async with (
        protected_service() as url,
        client.request(method, url + path, headers=make()) as response,
    ):
        assert response.status == 401
        assert await response.text() != ""


async def test_middleware_refuses_non_ascii_junk_with_401() -> None:
    async with protected_service() as url:
        port = int(url.rsplit(":", 1)[1])
        headers = live()
        head = [f"{name}: {value}".encode() for name, value in headers.items()]
        head[-1] = b"X-Gateway-Signature: v1,kid=k1,sig=\xc3\xbc"
        data = (
            b"POST /orders?id=7 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n"
            + b"".join(line + b"\r\n" for line in head)
            + b"\r\n"
        )
        response = await raw_request(port, data, timeout=2.0)
    assert response.status == 401


async def test_middleware_refuses_a_signed_header_sent_twice() -> None:
    async with protected_service() as url:
        port = int(url.rsplit(":", 1)[1])
        head = [b"X-User-Id: usr_forged"]
        head += [f"{name}: {value}".encode() for name, value in live().items()]
        data = (
            b"POST /orders?id=7 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n"
            + b"".join(line + b"\r\n" for line in head)
            + b"\r\n"
        )
        response = await raw_request(port, data, timeout=2.0)
    assert response.status == 401, json.loads(response.body)


async def test_middleware_checks_every_request_on_a_connection(client: ClientSession) -> None:
    """A kept-alive connection gets no credit: each request is verified on its own."""
    async with protected_service() as url:
        async with client.post(f"{url}/orders?id=7", headers=live()) as first:
            assert first.status == 200
            await first.read()
        async with client.post(f"{url}/orders?id=7") as second:
            assert second.status == 401
            await second.read()


async def test_middleware_raises_no_warning(
    client: ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(web, "RequestKey"):
        pytest.skip("aiohttp without web.RequestKey does not warn")
    # aiohttp warns once per key and process: start from a process that has seen none.
    monkeypatch.setattr(web.BaseRequest, "_seen_str_keys", set())
    async with (
        protected_service() as url,
        client.post(f"{url}/orders?id=7", headers=live()) as response,
    ):
        assert response.status == 200
        await response.read()


@pytest.mark.parametrize("length", [1, 32, 63, 64, 65, 200])
def test_the_signer_with_precomputed_pads_is_hmac_sha256(length: int) -> None:
    secret = bytes(range(256))[:length]
    message = b"v1\nGET\n/a?b=1\n1700000000\nx-auth-method:none\nx-request-id:r1"
    expected = base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest())
    signer = Signer("k9", secret)
    assert signer.signature(message) == "v1,kid=k9,sig=" + expected.rstrip(b"=").decode()
    assert signer.signature(message + b"x") != signer.signature(message)
