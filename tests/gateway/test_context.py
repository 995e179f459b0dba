"""Signed context headers v2 (docs/upstream-services.md): gateway.context's signer,
verifier and the aiohttp middleware that downstream services use, each upstream with a key of
its own."""

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
    derive_key,
    derive_keys,
    format_key,
    gateway_context_key,
    parse_keys,
    sign,
    verify,
)
from tests.support import LOOPBACK, cases, raw_request, serving

NOW = 1_800_000_000.0
# GATEWAY_SERVICE_SECRET=k1:...,k0:... (the master secrets), and what `gateway context-key
# orders` gives the service behind the upstream `orders`.
SECRETS = {
    "k1": b"the-current-secret-of-at-least-32-bytes",
    "k0": b"the-previous-secret-still-verifying-!!",
}
AUDIENCE = "orders"
KEYS = derive_keys(SECRETS.items(), AUDIENCE)
VALUES = {
    "x-request-id": "req-1",
    "x-auth-method": "jwt",
    "x-user-id": "usr_1",
    "x-user-email": "ann@example.com",
    "x-user-email-verified": "true",
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
    key: bytes | None = None,
    audience: str = AUDIENCE,
    timestamp: float = NOW,
) -> dict[str, str]:
    """The headers an upstream receives: the values (Title-Case names) and the signature."""
    if key is None:
        key = derive_key(SECRETS[kid], audience)
    stamp, signature = sign(kid, key, audience, method, path, values, int(timestamp))
    headers = {name.title(): value for name, value in values.items()}
    headers["X-Gateway-Timestamp"] = stamp
    headers["X-Gateway-Signature"] = signature
    return headers


def refused(headers: Mapping[str, str], *, method: str = METHOD, path: str = PATH) -> str:
    """Why verify() refuses the headers (it must)."""
    with pytest.raises(ContextError) as caught:
        verify(KEYS, AUDIENCE, method, path, headers, now=NOW)
    return str(caught.value)


# -- the good case -----------------------------------------------------------------------------


def test_a_good_signature_gives_the_context() -> None:
    context = verify(KEYS, AUDIENCE, METHOD, PATH, signed(), now=NOW)
    assert context == Context(
        auth_method="jwt",
        request_id="req-1",
        user_id="usr_1",
        email="ann@example.com",
        email_verified=True,
        roles=("user", "admin"),
        tenant_id="ten_1",
        session_id="ses_1",
        credential_id="key_1",
        timestamp=int(NOW),
    )


def test_only_the_headers_present_are_signed() -> None:
    values = {"x-request-id": "req-2", "x-auth-method": "none"}
    context = verify(KEYS, AUDIENCE, "GET", "/", signed(values, method="GET", path="/"), now=NOW)
    assert context.auth_method == "none"
    assert (context.user_id, context.email, context.tenant_id) == (None, None, None)
    assert context.roles == ()


def test_the_signature_is_the_documented_formula() -> None:
    """What examples/README.md tells services in other languages to compute."""
    headers = signed()
    key = hmac.new(SECRETS["k1"], b"gateway context v2\norders", hashlib.sha256).digest()
    lines = ["v2", "orders", METHOD, PATH, headers["X-Gateway-Timestamp"]]
    lines += [f"{name}:{VALUES[name]}" for name in sorted(VALUES)]
    mac = hmac.new(key, "\n".join(lines).encode(), hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert headers["X-Gateway-Signature"] == f"v2,kid=k1,aud=orders,sig={expected}"


@pytest.mark.parametrize(
    "case",
    [str.lower, str.upper, str.title, str.swapcase],
    ids=["lower", "upper", "title", "swapped"],
)
def test_header_names_in_any_case(case: Callable[[str], str]) -> None:
    headers = {case(name): value for name, value in signed().items()}
    assert verify(KEYS, AUDIENCE, METHOD, PATH, headers, now=NOW).user_id == "usr_1"


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
    assert verify(KEYS, AUDIENCE, METHOD, PATH, headers, now=NOW).user_id == "usr_1"


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
        assert verify(KEYS, AUDIENCE, METHOD, PATH, headers, now=NOW).timestamp == int(NOW) + offset
    else:
        assert refused(headers) == "the signature is too old or from the future"


def test_the_clock_is_read_when_no_time_is_given() -> None:
    now = time.time()
    assert verify(KEYS, AUDIENCE, METHOD, PATH, signed(timestamp=now)).user_id == "usr_1"
    with pytest.raises(ContextError):
        verify(KEYS, AUDIENCE, METHOD, PATH, signed(timestamp=now - 120))


# -- keys --------------------------------------------------------------------------------------


def test_an_unknown_kid_is_refused() -> None:
    headers = signed(kid="k1")
    headers["X-Gateway-Signature"] = headers["X-Gateway-Signature"].replace("kid=k1", "kid=k9")
    assert refused(headers) == "signed with an unknown key"


def test_a_known_kid_with_another_secret_is_refused() -> None:
    headers = signed(key=derive_key(b"an-attacker-guess-of-32-bytes-or-more!", AUDIENCE))
    assert refused(headers) == "the signature does not match"


def test_a_signature_moved_to_another_kid_is_refused() -> None:
    headers = signed(kid="k1")
    headers["X-Gateway-Signature"] = headers["X-Gateway-Signature"].replace("kid=k1", "kid=k0")
    assert refused(headers) == "the signature does not match"


@pytest.mark.parametrize("kid", ["k1", "k0"])
def test_rotation_every_key_verifies(kid: str) -> None:
    """GATEWAY_SERVICE_SECRET=k1:new,k0:old: the gateway signs with k1; services that know
    both accept either while the change rolls out."""
    assert verify(KEYS, AUDIENCE, METHOD, PATH, signed(kid=kid), now=NOW).user_id == "usr_1"


def test_rotation_a_retired_key_stops_verifying() -> None:
    headers = signed(kid="k0")
    assert refused_with({"k1": KEYS["k1"]}, headers) == "signed with an unknown key"


def refused_with(
    keys: Mapping[str, bytes], headers: Mapping[str, str], audience: str = AUDIENCE
) -> str:
    with pytest.raises(ContextError) as caught:
        verify(keys, audience, METHOD, PATH, headers, now=NOW)
    return str(caught.value)


# -- missing or malformed ----------------------------------------------------------------------


def _without(name: str) -> dict[str, str]:
    headers = signed()
    del headers[name]
    return headers


def _with(name: str, value: str) -> dict[str, str]:
    return {**signed(), name: value}


NO_SIG = "no gateway signature"
NO_MATCH = "the signature does not match"
OTHER_AUDIENCE = "the signature is for another audience"
MALFORMED = [
    # (description, headers, reason)
    ("no headers at all", {}, "no gateway signature"),
    ("no signature", _without("X-Gateway-Signature"), "no gateway signature"),
    ("empty signature", _with("X-Gateway-Signature", ""), "no gateway signature"),
    ("another version", _with("X-Gateway-Signature", "v3,kid=k1,aud=orders,sig=a"), NO_SIG),
    ("no kid", _with("X-Gateway-Signature", "v2,aud=orders,sig=abc"), NO_SIG),
    ("no aud", _with("X-Gateway-Signature", "v2,kid=k1,sig=abc"), NO_SIG),
    ("no sig", _with("X-Gateway-Signature", "v2,kid=k1,aud=orders"), NO_SIG),
    ("fields reordered", _with("X-Gateway-Signature", "v2,aud=orders,kid=k1,sig=a"), NO_SIG),
    ("a field twice", _with("X-Gateway-Signature", "v2,kid=k1,aud=orders,sig=a,sig=b"), NO_SIG),
    ("bare version", _with("X-Gateway-Signature", "v2"), NO_SIG),
    ("empty aud", _with("X-Gateway-Signature", "v2,kid=k1,aud=,sig=a"), OTHER_AUDIENCE),
    ("no timestamp", _without("X-Gateway-Timestamp"), "no gateway timestamp"),
    ("empty timestamp", _with("X-Gateway-Timestamp", ""), "no gateway timestamp"),
    ("negative timestamp", _with("X-Gateway-Timestamp", "-5"), "no gateway timestamp"),
    ("fractional timestamp", _with("X-Gateway-Timestamp", "1.5"), "no gateway timestamp"),
    ("empty sig", _with("X-Gateway-Signature", "v2,kid=k1,aud=orders,sig="), NO_MATCH),
]


@pytest.mark.parametrize(("headers", "reason"), cases(MALFORMED))
def test_missing_or_malformed_is_refused(headers: dict[str, str], reason: str) -> None:
    assert refused(headers) == reason


NON_ASCII = [
    ("superscript digit timestamp", _with("X-Gateway-Timestamp", "\u00b2")),
    ("non-ASCII sig", _with("X-Gateway-Signature", "v2,kid=k1,aud=orders,sig=\u00fc")),
    ("non-ASCII aud", _with("X-Gateway-Signature", "v2,kid=k1,aud=\u00f6rders,sig=a")),
]


@pytest.mark.parametrize("headers", cases(NON_ASCII))
def test_non_ascii_junk_is_a_context_error(headers: dict[str, str]) -> None:
    with pytest.raises(ContextError):
        verify(KEYS, AUDIENCE, METHOD, PATH, headers, now=NOW)


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
    app = web.Application(middlewares=[context_middleware(KEYS, AUDIENCE)])
    app.router.add_route("*", "/{tail:.*}", whoami)
    async with serving(app) as port:
        yield f"http://{LOOPBACK}:{port}"


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
        lambda: live(kid="k0") | {"X-Gateway-Signature": "v2,kid=k9,aud=orders,sig=a"},
    ),
    ("signed for another upstream", "POST", "/orders?id=7", lambda: live(audience="billing")),
    ("a v1 signature", "POST", "/orders?id=7", lambda: v1_signed(timestamp=time.time())),
]


@pytest.mark.parametrize(("method", "path", "make"), cases(MIDDLEWARE_REFUSALS))
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
        head[-1] = b"X-Gateway-Signature: v2,kid=k1,aud=orders,sig=\xc3\xbc"
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
    key = bytes(range(256))[:length]
    rest = b"GET\n/a?b=1\n1700000000\nx-auth-method:none\nx-request-id:r1"
    message = b"v2\nchat\n" + rest
    expected = base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest())
    signer = Signer("k9", key, "chat")
    assert signer.signature(rest) == "v2,kid=k9,aud=chat,sig=" + expected.rstrip(b"=").decode()
    assert signer.signature(rest + b"x") != signer.signature(rest)


def test_the_signer_signs_as_sign_does() -> None:
    signer = Signer("k1", KEYS["k1"], AUDIENCE)
    stamp, signature = signer.sign(METHOD, PATH, VALUES, int(NOW))
    assert (stamp, signature) == sign("k1", KEYS["k1"], AUDIENCE, METHOD, PATH, VALUES, int(NOW))


# -- audiences: a key per upstream -------------------------------------------------------------


def v1_signed(values: Mapping[str, str] = VALUES, timestamp: float = NOW) -> dict[str, str]:
    """What the gateway sent before v2: one HMAC with the master secret itself, no audience."""
    stamp = str(int(timestamp))
    lines = ["v1", METHOD, PATH, stamp] + [f"{n}:{values[n]}" for n in sorted(values)]
    mac = hmac.new(SECRETS["k1"], "\n".join(lines).encode(), hashlib.sha256).digest()
    headers = {name.title(): value for name, value in values.items()}
    headers["X-Gateway-Timestamp"] = stamp
    headers["X-Gateway-Signature"] = "v1,kid=k1,sig=" + base64.urlsafe_b64encode(mac).rstrip(
        b"="
    ).decode("ascii")
    return headers


def test_a_v1_signature_is_refused_even_when_genuine() -> None:
    assert refused(v1_signed()) == "a v1 signature: the gateway signs v2, with a key per upstream"


def test_a_signature_for_upstream_a_fails_at_upstream_b() -> None:
    """billing's service holds billing's key; a context signed for billing, replayed to
    orders (same method, path and time), is refused by orders' verifier."""
    for_billing = signed(audience="billing")
    billing_keys = derive_keys(SECRETS.items(), "billing")
    assert verify(billing_keys, "billing", METHOD, PATH, for_billing, now=NOW).user_id == "usr_1"
    assert refused(for_billing) == "the signature is for another audience"


def test_relabelling_the_audience_does_not_help() -> None:
    """The attacker edits aud=billing to aud=orders: the key and the signed text differ."""
    relabelled = signed(audience="billing")
    relabelled["X-Gateway-Signature"] = relabelled["X-Gateway-Signature"].replace(
        "aud=billing", "aud=orders"
    )
    assert refused(relabelled) == "the signature does not match"


def test_billing_key_cannot_sign_for_orders() -> None:
    """What one upstream holds (its own key) signs nothing another upstream accepts."""
    billing_key = derive_key(SECRETS["k1"], "billing")
    forged = signed(key=billing_key, audience="orders")
    assert refused(forged) == "the signature does not match"


def test_the_master_secret_is_not_the_key() -> None:
    forged = signed(key=SECRETS["k1"])
    assert refused(forged) == "the signature does not match"


def test_keys_differ_per_upstream_and_per_secret() -> None:
    keys = {derive_key(secret, aud) for secret in SECRETS.values() for aud in ("a", "b", "ab")}
    assert len(keys) == 6
    assert all(len(key) == 32 for key in keys)


def test_derive_key_is_the_documented_hmac() -> None:
    expected = hmac.new(SECRETS["k0"], b"gateway context v2\nbilling", hashlib.sha256).digest()
    assert derive_key(SECRETS["k0"], "billing") == expected


def test_context_key_lines_parse_back() -> None:
    lines = "\n".join(format_key(kid, key) for kid, key in KEYS.items())
    assert parse_keys(lines) == KEYS
    assert parse_keys(lines.replace("\n", ",")) == KEYS


@pytest.mark.parametrize(
    "text",
    ["", "k1", "k1:", ":abc", "k1:not*base64", "k1:" + "A" * 10, "k1:{k},k1:{k}"],
    ids=["empty", "no colon", "no key", "no kid", "not base64", "short key", "kid twice"],
)
def test_bad_context_keys_are_refused(text: str) -> None:
    key = format_key("x", KEYS["k1"]).split(":", 1)[1]
    with pytest.raises(ValueError, match="kid"):
        parse_keys(text.replace("{k}", key))


# -- X-User-Email-Verified ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "verified"), [("true", True), ("false", False)], ids=["verified", "unverified"]
)
def test_the_email_verified_flag_is_read(flag: str, verified: bool) -> None:
    values = {**VALUES, "x-user-email-verified": flag}
    assert verify(KEYS, AUDIENCE, METHOD, PATH, signed(values), now=NOW).email_verified is verified


def test_the_email_verified_flag_is_signed() -> None:
    """An upstream that trusts the flag must not be lied to: unverified -> verified fails."""
    headers = signed({**VALUES, "x-user-email-verified": "false"})
    headers["X-User-Email-Verified"] = "true"
    assert refused(headers) == "the signature does not match"


def test_the_email_verified_flag_cannot_be_added() -> None:
    values = {k: v for k, v in VALUES.items() if k != "x-user-email-verified"}
    headers = signed(values)
    assert verify(KEYS, AUDIENCE, METHOD, PATH, headers, now=NOW).email_verified is False
    headers["X-User-Email-Verified"] = "true"
    assert refused(headers) == "the signature does not match"
