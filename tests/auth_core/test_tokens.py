"""Access tokens as RFC 8725 asks: every hostile token below is built by hand and refused with
the right code; good tokens verify, keys rotate, keyrings parse strictly."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from auth_core.tokens import (
    LEEWAY,
    MAX_TOKEN_BYTES,
    AccessTokens,
    Keyring,
    KeyringError,
    TokenError,
)
from tests.support import access_claims

SECRET = "s" * 40
OLD_SECRET = "o" * 40
ISSUER = "gateway"
AUDIENCE = "gateway"
TTL = 900.0
KEYRING = Keyring.parse(f"k1:{SECRET},old:{OLD_SECRET}")
TOKENS = AccessTokens(KEYRING, issuer=ISSUER, audience=AUDIENCE, ttl=TTL)
HEADER = {"alg": "HS256", "typ": "at+jwt", "kid": "k1"}
NOT_UTF8 = b"\xff\xfe\xfd"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode(part: Any) -> str:
    return b64url(part if isinstance(part, bytes) else json.dumps(part).encode())


def claims(**changes: Any) -> dict[str, Any]:
    """A valid payload as we issue it; a value of None removes the claim."""
    now = time.time()
    return access_claims(now, **{"exp": now + TTL, "email": "ada@example.com", **changes})


def sign(
    header: Any = None,
    payload: Any = None,
    *,
    secret: str = SECRET,
    digest: Callable[[], Any] = hashlib.sha256,
) -> str:
    """header.payload.HMAC(signing input) with `secret`, built without any JWT library."""
    signing_input = f"{encode(HEADER if header is None else header)}.{encode(payload or claims())}"
    mac = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(mac)}"


def unsigned(header: Any, payload: Any = None, signature: str = "") -> str:
    return f"{encode(header)}.{encode(payload or claims())}.{signature}"


def good() -> str:
    return TOKENS.issue(
        subject="usr_1", session_id="ses_1", roles=("user",), tenant_id=None, email=None
    )[0]


def tampered() -> str:
    header, _, signature = good().split(".")
    return f"{header}.{encode(claims(roles=['admin']))}.{signature}"


def oversized() -> str:
    token = sign(payload=claims(padding="x" * MAX_TOKEN_BYTES))
    assert len(token) > MAX_TOKEN_BYTES
    return token


BAD_TOKENS: list[Any] = [
    # -- the algorithm
    pytest.param(lambda: unsigned({**HEADER, "alg": "none"}), id="alg-none"),
    pytest.param(lambda: unsigned({**HEADER, "alg": "None"}), id="alg-None"),
    pytest.param(lambda: unsigned({**HEADER, "alg": "none"}, signature="c2ln"), id="alg-none-sig"),
    pytest.param(lambda: sign({**HEADER, "alg": "HS512"}, digest=hashlib.sha512), id="alg-HS512"),
    pytest.param(lambda: sign({**HEADER, "alg": "HS384"}, digest=hashlib.sha384), id="alg-HS384"),
    # Algorithm confusion: an RS256 header with our secret used as the HMAC key.
    pytest.param(lambda: sign({**HEADER, "alg": "RS256"}), id="alg-RS256-hmac-confusion"),
    pytest.param(lambda: sign({**HEADER, "alg": "ES256"}), id="alg-ES256"),
    pytest.param(lambda: sign({"typ": "at+jwt", "kid": "k1"}), id="alg-missing"),
    pytest.param(lambda: sign({**HEADER, "alg": "hs256"}), id="alg-lower-case"),
    # -- header members that would make us fetch or trust a key, or need understanding
    pytest.param(
        lambda: sign({**HEADER, "jwk": {"kty": "oct", "k": b64url(SECRET.encode())}}),
        id="header-jwk",
    ),
    pytest.param(lambda: sign({**HEADER, "jku": "https://evil.example/jwks"}), id="header-jku"),
    pytest.param(lambda: sign({**HEADER, "x5u": "https://evil.example/cert"}), id="header-x5u"),
    pytest.param(lambda: sign({**HEADER, "x5c": ["MIIBIjANBgkq"]}), id="header-x5c"),
    pytest.param(lambda: sign({**HEADER, "crit": ["exp"]}), id="header-crit"),
    pytest.param(lambda: sign({**HEADER, "zip": "DEF"}), id="header-zip"),
    pytest.param(lambda: sign({**HEADER, "cty": "JWT"}), id="header-cty"),
    # -- the explicit type (RFC 9068)
    pytest.param(lambda: sign({"alg": "HS256", "kid": "k1"}), id="typ-missing"),
    pytest.param(lambda: sign({**HEADER, "typ": "JWT"}), id="typ-JWT"),
    pytest.param(lambda: sign({**HEADER, "typ": "refresh+jwt"}), id="typ-other"),
    # -- the key id
    pytest.param(lambda: sign({"alg": "HS256", "typ": "at+jwt"}), id="kid-missing"),
    pytest.param(lambda: sign({**HEADER, "kid": "k9"}), id="kid-unknown"),
    pytest.param(lambda: sign({**HEADER, "kid": 1}), id="kid-not-a-string"),
    pytest.param(lambda: sign({**HEADER, "kid": ""}), id="kid-empty"),
    pytest.param(
        lambda: sign({**HEADER, "kid": "removed"}, secret="r" * 40), id="kid-of-a-removed-key"
    ),
    pytest.param(lambda: sign(secret="w" * 40), id="signed-with-another-secret"),
    pytest.param(lambda: sign({**HEADER, "kid": "old"}), id="signed-with-the-other-kids-key"),
    # -- required claims
    *(
        pytest.param(lambda name=name: sign(payload=claims(**{name: None})), id=f"no-{name}")
        for name in ("exp", "sub", "sid", "jti", "iat", "aud", "iss")
    ),
    # -- times (the leeway is 30 s)
    pytest.param(lambda: sign(payload=claims(nbf=time.time() + LEEWAY + 60)), id="nbf-future"),
    pytest.param(lambda: sign(payload=claims(iat=time.time() + LEEWAY + 60)), id="iat-future"),
    pytest.param(lambda: sign(payload=claims(exp="tomorrow")), id="exp-not-a-number"),
    pytest.param(lambda: sign(payload=claims(iat="today")), id="iat-not-a-number"),
    # -- who it is for and from
    pytest.param(lambda: sign(payload=claims(aud="someone-else")), id="aud-wrong"),
    pytest.param(lambda: sign(payload=claims(aud=["a", "b"])), id="aud-list-without-ours"),
    pytest.param(lambda: sign(payload=claims(iss="https://evil.example")), id="iss-wrong"),
    pytest.param(lambda: sign(payload=claims(iss=None, aud=None)), id="no-iss-no-aud"),
    # -- claim shapes
    pytest.param(lambda: sign(payload=claims(roles="admin")), id="roles-a-string"),
    pytest.param(lambda: sign(payload=claims(roles={"admin": True})), id="roles-an-object"),
    pytest.param(lambda: sign(payload=claims(email_verified="true")), id="email_verified-a-string"),
    pytest.param(lambda: sign(payload=claims(email_verified=1)), id="email_verified-a-number"),
    pytest.param(lambda: sign(payload=["not", "an", "object"]), id="payload-json-array"),
    pytest.param(lambda: sign(payload=b"not json"), id="payload-not-json"),
    # -- identity claims that are not plain text (they become headers, log fields, keys)
    *(
        pytest.param(lambda changes=changes: sign(payload=claims(**changes)), id=name)
        for name, changes in [
            ("email-escape", {"email": "ada\x1b[2J@example.com"}),
            ("email-newline", {"email": "ada@example.com\nX-User-Roles: admin"}),
            ("email-nul", {"email": "ada\x00@example.com"}),
            ("email-c1", {"email": "ada\x9b@example.com"}),
            ("email-line-separator", {"email": "ada\u2028@example.com"}),
            ("email-lone-surrogate", {"email": "ada\ud800@example.com"}),
            ("email-a-number", {"email": 42}),
            ("name-del", {"name": "Ada\x7f"}),
            ("roles-tab", {"roles": ["user\tadmin"]}),
            ("roles-not-strings", {"roles": [["admin"]]}),
            ("sub-cr", {"sub": "usr_1\r"}),
            ("sub-a-number", {"sub": 7}),
            ("sid-nul", {"sid": "ses\x00"}),
            ("jti-bell", {"jti": "jti\x07"}),
            ("tenant-paragraph-separator", {"tenant": "ten\u2029"}),
            ("tenant-an-object", {"tenant": {"id": "ten_1"}}),
        ]
    ),
    # -- the signature
    pytest.param(tampered, id="tampered-payload"),
    pytest.param(lambda: good()[:-4], id="truncated-signature"),
    pytest.param(lambda: good().rsplit(".", 1)[0] + ".", id="empty-signature"),
    pytest.param(lambda: good().rsplit(".", 1)[0] + ".!!!!", id="signature-not-base64"),
    # -- the shape of the token
    pytest.param(lambda: "", id="empty"),
    pytest.param(lambda: "not-a-jwt", id="one-segment"),
    pytest.param(lambda: good().rsplit(".", 1)[0], id="two-segments"),
    pytest.param(lambda: good() + ".c2ln", id="four-segments"),
    pytest.param(lambda: ".".join(["", *good().split(".")[1:]]), id="empty-header"),
    pytest.param(lambda: "!!!!.@@@@.####", id="non-base64"),
    pytest.param(lambda: f"{b64url(NOT_UTF8)}.{encode(claims())}.c2ln", id="header-not-utf8"),
    pytest.param(lambda: f"{b64url(b'{not json')}.{encode(claims())}.c2ln", id="header-not-json"),
    pytest.param(lambda: sign(["HS256", "at+jwt", "k1"]), id="header-json-array"),
    pytest.param(lambda: sign("HS256"), id="header-json-string"),
    pytest.param(lambda: sign(42), id="header-json-number"),
    pytest.param(lambda: "é" + good(), id="non-ascii"),
    pytest.param(oversized, id="over-max-token-bytes"),
]


@pytest.mark.parametrize("make", BAD_TOKENS)
def test_bad_tokens_are_refused_as_invalid(make: Callable[[], str]) -> None:
    token = make()
    with pytest.raises(TokenError) as caught:
        TOKENS.verify(token)
    assert caught.value.code == "invalid_token"
    assert caught.value.detail


@pytest.mark.parametrize(
    "header",
    [
        # hmac.compare_digest() raises TypeError on non-ASCII str, in Keyring.secret().
        pytest.param(
            {**HEADER, "kid": "ké"},
            id="kid-non-ascii",
        ),
        # json.loads() raises RecursionError, which _header() does not catch.
        pytest.param(
            b"[" * 1500 + b"]" * 1500,
            id="header-nested-1500-deep",
        ),
    ],
)
def test_hostile_headers_are_refused_as_invalid_not_raised(header: Any) -> None:
    token = f"{encode(header)}.{encode({})}.c2ln"
    assert len(token) <= MAX_TOKEN_BYTES
    with pytest.raises(TokenError) as caught:
        TOKENS.verify(token)
    assert caught.value.code == "invalid_token"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda: claims(exp=time.time() - LEEWAY - 5), id="beyond-leeway"),
        pytest.param(lambda: claims(iat=1, nbf=1, exp=2), id="long-ago"),
    ],
)
def test_expired_tokens_are_refused_as_expired(payload: Callable[[], dict[str, Any]]) -> None:
    with pytest.raises(TokenError) as caught:
        TOKENS.verify(sign(payload=payload()))
    assert caught.value.code == "token_expired"


def test_expired_tokens_issued_by_us_are_refused_as_expired() -> None:
    token, _ = TOKENS.issue(
        subject="usr_1",
        session_id="ses_1",
        roles=(),
        tenant_id=None,
        email=None,
        now=time.time() - TTL - LEEWAY - 5,
    )
    with pytest.raises(TokenError) as caught:
        TOKENS.verify(token)
    assert caught.value.code == "token_expired"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(lambda now: {"exp": now - LEEWAY + 10}, id="expired-within-leeway"),
        pytest.param(lambda now: {"nbf": now + LEEWAY - 10}, id="nbf-within-leeway"),
        pytest.param(lambda now: {"iat": now + LEEWAY - 10}, id="iat-within-leeway"),
        pytest.param(lambda now: {"nbf": None}, id="no-nbf"),
        pytest.param(lambda now: {"roles": None}, id="no-roles"),
        pytest.param(lambda now: {"aud": [AUDIENCE, "other"]}, id="aud-list-with-ours"),
        pytest.param(lambda now: {"iat": int(now), "exp": int(now) + 60}, id="integer-times"),
    ],
)
def test_acceptable_variations_verify(changes: Callable[[float], dict[str, Any]]) -> None:
    verified = TOKENS.verify(sign(payload=claims(**changes(time.time()))))
    assert (verified.subject, verified.session_id, verified.token_id) == ("usr_1", "ses_1", "jti_1")


def test_a_token_we_issue_verifies_with_its_claims() -> None:
    before = time.time()
    token, issued = TOKENS.issue(
        subject="usr_1",
        session_id="ses_1",
        roles=("user", "admin"),
        tenant_id="ten_1",
        email="ada@example.com",
    )
    assert len(token) < MAX_TOKEN_BYTES
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "at+jwt", "kid": "k1"}
    verified = TOKENS.verify(token)
    assert verified == issued
    assert verified.subject == "usr_1"
    assert verified.session_id == "ses_1"
    assert verified.roles == ("user", "admin")
    assert verified.tenant_id == "ten_1"
    assert verified.email == "ada@example.com"
    assert before - 0.001 <= verified.issued_at <= time.time() + 0.001
    assert verified.expires_at == pytest.approx(verified.issued_at + TTL, abs=0.002)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) >= {"exp", "iat", "nbf", "iss", "aud", "sub", "sid", "jti", "roles"}


def test_every_token_has_its_own_jti() -> None:
    ids = {TOKENS.verify(good()).token_id for _ in range(20)}
    assert len(ids) == 20


def test_a_token_built_by_hand_like_ours_verifies() -> None:
    # The hand-built tokens above are refused for what they change, not for how they are built.
    verified = TOKENS.verify(sign())
    assert verified.email == "ada@example.com"


@pytest.mark.parametrize("verified", [True, False])
def test_email_verified_is_carried_in_the_token(verified: bool) -> None:
    token, issued = TOKENS.issue(
        subject="usr_1",
        session_id="ses_1",
        roles=("user",),
        tenant_id=None,
        email="ada@example.com",
        email_verified=verified,
    )
    assert jwt.decode(token, options={"verify_signature": False})["email_verified"] is verified
    assert TOKENS.verify(token).email_verified is verified
    assert issued.email_verified is verified


def test_a_token_without_email_verified_says_unverified() -> None:
    """Tokens issued before the claim existed: the address is not taken as proven."""
    assert "email_verified" not in claims()
    assert TOKENS.verify(sign()).email_verified is False
    assert TOKENS.verify(sign(payload=claims(email_verified=True))).email_verified is True


# -- rotation ----------------------------------------------------------------------------------


def test_key_rotation() -> None:
    k1 = f"k1:{'1' * 40}"
    k2 = f"k2:{'2' * 40}"
    before = AccessTokens(Keyring.parse(k1), issuer=ISSUER, audience=AUDIENCE, ttl=TTL)
    during = AccessTokens(Keyring.parse(f"{k2},{k1}"), issuer=ISSUER, audience=AUDIENCE, ttl=TTL)
    after = AccessTokens(Keyring.parse(k2), issuer=ISSUER, audience=AUDIENCE, ttl=TTL)

    def issue(tokens: AccessTokens) -> str:
        return tokens.issue(subject="u", session_id="s", roles=(), tenant_id=None, email=None)[0]

    old = issue(before)
    new = issue(during)
    assert jwt.get_unverified_header(old)["kid"] == "k1"
    assert jwt.get_unverified_header(new)["kid"] == "k2"
    # While both keys are listed, tokens of either verify.
    assert during.verify(old).subject == "u"
    assert during.verify(new).subject == "u"
    # Once k1 is removed its tokens fail; k2's go on.
    with pytest.raises(TokenError) as caught:
        after.verify(old)
    assert caught.value.code == "invalid_token"
    assert after.verify(new).subject == "u"
    # A node that has not heard of k2 yet refuses the new tokens.
    with pytest.raises(TokenError):
        before.verify(new)


# -- keyrings ----------------------------------------------------------------------------------

LONG = "x" * 32


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "kid:secret", id="empty"),
        pytest.param(LONG, "kid:secret", id="missing-colon"),
        pytest.param(f":{LONG}", "kid:secret", id="empty-kid"),
        pytest.param("k1:", "kid:secret", id="empty-secret"),
        pytest.param(f"k1:{LONG},", "kid:secret", id="trailing-comma"),
        pytest.param(f"k1:{LONG},,k2:{LONG}", "kid:secret", id="empty-entry"),
        pytest.param("k1:" + "x" * 31, "32 bytes", id="short-secret-31"),
        pytest.param("k1:tooshort", "32 bytes", id="short-secret"),
        pytest.param(f"k1:{LONG},k2:short", "32 bytes", id="second-secret-short"),
        pytest.param("k1:" + "é" * 15, "32 bytes", id="short-in-bytes"),
        pytest.param(f"k1:{LONG},k1:{'y' * 32}", "twice", id="duplicate-kid"),
    ],
)
def test_keyring_parse_errors(text: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message) as caught:
        Keyring.parse(text)
    # The message names the key, never the secret.
    assert LONG not in str(caught.value)
    assert "tooshort" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        pytest.param(f"k1:{LONG}", [("k1", LONG)], id="one"),
        pytest.param(f"k2:{'b' * 40},k1:{LONG}", [("k2", "b" * 40), ("k1", LONG)], id="two"),
        pytest.param(f" k1:{LONG} , k2:{LONG} ", [("k1", LONG), ("k2", LONG)], id="spaces"),
        pytest.param(f"k1:{LONG}:with:colons", [("k1", f"{LONG}:with:colons")], id="colons"),
        pytest.param("k1:" + "é" * 16, [("k1", "é" * 16)], id="32-bytes-of-utf8"),
    ],
)
def test_keyring_parse(text: str, keys: list[tuple[str, str]]) -> None:
    keyring = Keyring.parse(text)
    assert keyring.keys == tuple((kid, secret.encode()) for kid, secret in keys)
    assert keyring.current == keyring.keys[0]
    for kid, secret in keys:
        assert keyring.secret(kid) == secret.encode()
    assert keyring.secret("nope") is None


def test_generated_keyring_entries_parse_and_differ() -> None:
    first, second = Keyring.generate("k7"), Keyring.generate("k7")
    assert first != second
    assert first.startswith("k7:")
    assert Keyring.parse(first).current[0] == "k7"
