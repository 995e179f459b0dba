"""The clock-skew leeway on access tokens is 30 seconds (docs/authentication.md, Verification): a
token that
expired 20 s ago, or whose `nbf` or `iat` lies 20 s ahead, is accepted; 40 s is refused. The
number is written here, not read from auth_core/tokens.py, so that a changed leeway fails.

Tokens are built by hand (HMAC-SHA256 over the signing input, no JWT library), checked by the
verifier and sent to a `jwt` route of a running gateway, whose echo upstream must see the
accepted ones only. 10 s either side of the boundary leaves room for a slow machine between
building a token and checking it.

Guards against mutations of the leeway that passed every test because the tests computed their
times from the code's own constant: a wider or narrower `LEEWAY`, and `leeway=` dropped from the
decode call (no leeway on `exp` and `nbf`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from aiohttp import ClientSession

from auth_core.tokens import AccessTokens, Keyring, TokenError
from tests.support import (
    Upstream,
    access_claims,
    auth_settings,
    cases,
    quiet_settings,
    running_gateway,
)

SECRET = "leeway-test-secret-of-at-least-32-bytes"
KID = "lw"
ISSUER = "gateway"  # the default issuer and audience
AUDIENCE = "gateway"
LEEWAY_SECONDS = 30
INSIDE = LEEWAY_SECONDS - 10  # 20 s: within the leeway
OUTSIDE = LEEWAY_SECONDS + 10  # 40 s: beyond it

# (description, claims relative to now (seconds), None if accepted or the error code)
CASES: list[tuple[str, dict[str, float], str | None]] = [
    ("expired-inside-leeway", {"exp": -INSIDE}, None),
    ("expired-outside-leeway", {"exp": -OUTSIDE}, "token_expired"),
    ("nbf-ahead-inside-leeway", {"nbf": +INSIDE}, None),
    ("nbf-ahead-outside-leeway", {"nbf": +OUTSIDE}, "invalid_token"),
    ("iat-ahead-inside-leeway", {"iat": +INSIDE, "nbf": 0}, None),
    ("iat-ahead-outside-leeway", {"iat": +OUTSIDE, "nbf": 0}, "invalid_token"),
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(offsets: dict[str, float], subject: str = "usr_leeway") -> str:
    """An access token as we issue them, its times `now + offset` where given."""
    now = time.time()
    times = {"exp": now + 900, **{name: now + offset for name, offset in offsets.items()}}
    claims = access_claims(now, sub=subject, sid="ses_leeway", jti=f"jti_{subject}", **times)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": KID}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    mac = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


@pytest.mark.parametrize(("offsets", "refusal"), cases(CASES))
def test_the_verifier_allows_30_seconds_of_skew(
    offsets: dict[str, float], refusal: str | None
) -> None:
    tokens = AccessTokens(
        Keyring.parse(f"{KID}:{SECRET}"), issuer=ISSUER, audience=AUDIENCE, ttl=900
    )
    if refusal is None:
        assert tokens.verify(token(offsets)).subject == "usr_leeway"
    else:
        with pytest.raises(TokenError) as caught:
            tokens.verify(token(offsets))
        assert caught.value.code == refusal


async def test_the_gateway_allows_30_seconds_of_skew(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    settings = quiet_settings(
        auth=auth_settings(tmp_path, jwt_keyring=Keyring.parse(f"{KID}:{SECRET}")),
    )
    text = (
        "version: 1\n"
        f"upstreams:\n  echo: {{targets: ['{upstream.url}']}}\n"
        "routes:\n"
        "  - {name: app, path: /app, upstream: echo, auth: jwt}\n"
    )
    async with running_gateway(text, tmp_path, settings) as gw:
        for description, offsets, refusal in CASES:
            before = len(upstream.seen)
            bearer = {"Authorization": f"Bearer {token(offsets, f'usr_{description}')}"}
            async with client.get(f"{gw.url}/app", headers=bearer) as response:
                if refusal is None:
                    assert response.status == 200, (description, await response.text())
                    assert len(upstream.seen) == before + 1, description
                else:
                    assert response.status == 401, (description, await response.text())
                    assert (await response.json())["error"] == refusal, description
                    assert len(upstream.seen) == before, description
