"""docs/upstream-services.md has a worked example anyone can check by hand: the
values it states are read out of the page here and checked against gateway.context (and
against plain hmac), so the documentation cannot drift from the code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path

from gateway.context import derive_key, format_key, sign, signed_text, verify

PAGE = Path(__file__).resolve().parents[2] / "docs" / "upstream-services.md"


def worked_example() -> str:
    text = PAGE.read_text()
    start = text.index("## A worked example")
    return text[start : text.index("\n## ", start)]


def blocks(section: str) -> list[str]:
    return re.findall(r"```text\n(.*?)```", section, re.S)


def inputs() -> dict[str, str]:
    table = blocks(worked_example())[0]
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in table.splitlines())


def test_the_worked_example_inputs_are_the_ones_this_test_expects() -> None:
    assert inputs() == {
        "GATEWAY_SERVICE_SECRET": "k1:worked-example-secret-not-for-production",
        "audience": "billing",
        "request": "POST /invoices?page=2",
        "X-Gateway-Timestamp": "1767225600",
        "X-Request-Id": "req-7f3a",
        "X-Auth-Method": "jwt",
        "X-User-Id": "usr_42",
        "X-User-Email": "ann@example.com",
        "X-User-Email-Verified": "true",
        "X-User-Roles": "user,admin",
        "X-Session-Id": "ses_9",
    }


def test_the_worked_example_matches_the_code() -> None:
    section = worked_example()
    given = inputs()
    kid, secret = given.pop("GATEWAY_SERVICE_SECRET").split(":", 1)
    audience = given.pop("audience")
    method, path = given.pop("request").split(" ")
    stamp = given.pop("X-Gateway-Timestamp")
    values = {name.lower(): value for name, value in given.items()}

    key = derive_key(secret.encode(), audience)
    hex_key = re.search(r"in hex, `([0-9a-f]{64})`", section)
    assert hex_key is not None
    assert hex_key.group(1) == key.hex()
    printed = re.search(r"`gateway context-key billing` prints `([^`]+)`", section)
    assert printed is not None
    assert printed.group(1) == format_key(kid, key)

    documented_text = blocks(section)[1].rstrip("\n")
    assert documented_text == signed_text(audience, method, path, stamp, values)

    header = re.search(r"`X-Gateway-Signature: (v2,[^`]+)`", section)
    assert header is not None
    assert header.group(1) == sign(kid, key, audience, method, path, values, int(stamp))[1]
    headers = {**given, "X-Gateway-Timestamp": stamp, "X-Gateway-Signature": header.group(1)}
    context = verify({kid: key}, audience, method, path, headers, now=float(stamp))
    assert (context.user_id, context.email_verified) == ("usr_42", True)


def test_the_worked_example_is_plain_hmac_sha256() -> None:
    """What the page's OpenSSL commands compute, without gateway.context."""
    section = worked_example()
    key = hmac.new(
        b"worked-example-secret-not-for-production", b"gateway context v2\nbilling", hashlib.sha256
    ).digest()
    text = blocks(section)[1].rstrip("\n").encode()
    sig = base64.urlsafe_b64encode(hmac.new(key, text, hashlib.sha256).digest()).rstrip(b"=")
    assert f"v2,kid=k1,aud=billing,sig={sig.decode()}`" in section
    assert f"hexkey:{key.hex()} " in section
