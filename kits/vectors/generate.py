"""Writes context-v2.json beside this file: the test vectors every verifier of the gateway's
context signatures (Python, Django, Node.js) runs, so that none of them drifts from the
reference, `gateway.context`.

Each case is signed with `gateway.context.sign` and judged by `gateway.context.verify`; the
expected outcome written in each case below is checked against the reference's, so a change
of the reference that would change a verdict stops this script instead of slipping into the
file. `python kits/vectors/generate.py` rewrites the file; `--stdout` prints it instead.

Header values are sent as UTF-8 bytes (the gateway writes them so): a verifier whose
framework decodes header bytes as Latin-1 (Node.js does) must take them back to bytes first.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multidict import MultiDict

from gateway.context import ContextError, derive_key, format_key, sign, verify

AUDIENCE = "billing"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
SECRETS = {"k1": b"vector secret one, not for production use", "k2": b"vector secret two, ditto"}
KEYS = {kid: derive_key(secret, AUDIENCE) for kid, secret in SECRETS.items()}
OTHER_AUDIENCE = "orders"
UNKNOWN_KEY = derive_key(b"a secret the service was never given", AUDIENCE)
FILE = Path(__file__).with_name("context-v2.json")

# How each context header is spelt in the vectors: mixed case on purpose, since a verifier
# must compare names case-insensitively.
SPELLING = {
    "x-request-id": "X-Request-Id",
    "x-auth-method": "X-Auth-Method",
    "x-user-id": "X-User-Id",
    "x-user-email": "x-user-email",
    "x-user-email-verified": "X-User-Email-Verified",
    "x-user-roles": "X-USER-ROLES",
    "x-tenant-id": "X-Tenant-Id",
    "x-session-id": "X-Session-Id",
    "x-credential-id": "x-credential-id",
}
SIGNATURE, TIMESTAMP = "X-Gateway-Signature", "x-gateway-timestamp"

JWT = {
    "x-request-id": "req-jwt-1",
    "x-auth-method": "jwt",
    "x-user-id": "usr_01HZX3",
    "x-user-email": "ada@example.com",
    "x-user-email-verified": "true",
    "x-user-roles": "admin,billing",
    "x-tenant-id": "ten_acme",
    "x-session-id": "ses_7f3a",
}
API_KEY = {
    "x-request-id": "req-key-1",
    "x-auth-method": "api_key",
    "x-tenant-id": "ten_acme",
    "x-user-roles": "reports",
    "x-credential-id": "key_9c1d",
}
PAT = {
    "x-request-id": "req-pat-1",
    "x-auth-method": "pat",
    "x-user-id": "usr_01HZX4",
    "x-user-email": "grace@example.com",
    "x-user-email-verified": "false",
    "x-user-roles": "user",
    "x-credential-id": "pat_51b0",
}
SERVICE = {
    "x-request-id": "req-svc-1",
    "x-auth-method": "service",
    "x-user-roles": "service",
    "x-credential-id": "svc_reporting",
}
NONE = {"x-request-id": "req-none-1", "x-auth-method": "none"}

Headers = list[list[str]]


def signed(
    values: dict[str, str],
    *,
    method: str = "GET",
    path: str = "/invoices?page=2",
    age: int = 0,
    kid: str = "k1",
    key: bytes | None = None,
    audience: str = AUDIENCE,
) -> Headers:
    """The headers the gateway sends with `values` signed `age` seconds before NOW."""
    stamp, signature = sign(
        kid, KEYS[kid] if key is None else key, audience, method, path, values, NOW - age
    )
    headers = [[SPELLING[name], value] for name, value in values.items()]
    return [[SIGNATURE, signature], [TIMESTAMP, stamp], *headers]


def replaced(headers: Headers, name: str, value: str) -> Headers:
    """`headers` with the value of `name` (any case) changed."""
    return [[n, value if n.lower() == name.lower() else v] for n, v in headers]


def without(headers: Headers, name: str) -> Headers:
    return [[n, v] for n, v in headers if n.lower() != name.lower()]


def relabelled(headers: Headers, old: str, new: str) -> Headers:
    """`headers` with `old` replaced by `new` in the signature's fields (not in its sig)."""
    fields, _, sig = value(headers, SIGNATURE).rpartition(",sig=")
    return replaced(headers, SIGNATURE, f"{fields.replace(old, new)},sig={sig}")


def value(headers: Headers, name: str) -> str:
    return next(v for n, v in headers if n.lower() == name.lower())


def case(
    description: str,
    headers: Headers,
    valid: bool,
    *,
    method: str = "GET",
    path: str = "/invoices?page=2",
) -> dict[str, Any]:
    return {
        "description": description,
        "method": method,
        "path": path,
        "headers": headers,
        "valid": valid,
    }


def cases() -> list[dict[str, Any]]:
    jwt = signed(JWT)
    sig = value(jwt, SIGNATURE)
    orders = signed(JWT, key=derive_key(SECRETS["k1"], OTHER_AUDIENCE), audience=OTHER_AUDIENCE)
    odd_path = "/invoices/caf%C3%A9%2F2026?q=a%20b&sort=-date&page=2"
    return [
        case("valid: a user signed in with a JWT, signed with the first key (k1)", jwt, True),
        case(
            "valid: signed with the second key (k2): a service holds both while the gateway "
            "rotates its secret",
            signed(JWT, kid="k2"),
            True,
        ),
        case("valid: an API key of a tenant", signed(API_KEY), True),
        case("valid: a personal access token", signed(PAT), True),
        case("valid: a service token", signed(SERVICE), True),
        case("valid: a public route (auth: none)", signed(NONE), True),
        case(
            "valid: a non-ASCII e-mail address, sent as UTF-8 bytes and signed as UTF-8",
            signed({**PAT, "x-user-email": "zoë.ñúñez@exämple.org"}),
            True,
        ),
        case(
            "valid: the path with its query and percent-escapes exactly as sent, not decoded",
            signed(JWT, path=odd_path),
            True,
            path=odd_path,
        ),
        case(
            "valid: a POST, the method being signed",
            signed(JWT, method="POST", path="/invoices"),
            True,
            method="POST",
            path="/invoices",
        ),
        case("valid: exactly 60 s old, the oldest accepted", signed(JWT, age=60), True),
        case("refused: 61 s old, one second too old", signed(JWT, age=61), False),
        case("valid: 5 s in the future (clock skew), the most accepted", signed(JWT, age=-5), True),
        case("refused: 6 s in the future, one second too far", signed(JWT, age=-6), False),
        case("refused: expired, signed an hour ago (a replay)", signed(JWT, age=3600), False),
        case("refused: from the future, an hour ahead", signed(JWT, age=-3600), False),
        case(
            "refused: signed for another audience (orders), with orders' key: a context sent "
            "to one upstream replayed to another",
            orders,
            False,
        ),
        case(
            "refused: signed for orders with orders' key, the aud label rewritten to billing",
            relabelled(orders, "aud=orders", "aud=billing"),
            False,
        ),
        case(
            "refused: an unknown kid (k3), a key this service was not given",
            relabelled(signed(JWT, key=UNKNOWN_KEY), "kid=k1", "kid=k3"),
            False,
        ),
        case(
            "refused: kid k1 but made with another key (forged)",
            signed(JWT, key=UNKNOWN_KEY),
            False,
        ),
        case(
            "refused: tampered header value (X-User-Roles changed after signing)",
            replaced(jwt, "x-user-roles", "admin,billing,superuser"),
            False,
        ),
        case(
            "refused: tampered header value (X-User-Id changed after signing)",
            replaced(jwt, "x-user-id", "usr_01HZX5"),
            False,
        ),
        case(
            "refused: tampered path: replayed to another path of the same service",
            jwt,
            False,
            path="/invoices/export",
        ),
        case(
            "refused: tampered query: the path with another query",
            jwt,
            False,
            path="/invoices?page=3",
        ),
        case("refused: tampered method: a GET's headers on a DELETE", jwt, False, method="DELETE"),
        case(
            "refused: tampered timestamp (moved one second later)",
            replaced(jwt, TIMESTAMP, str(NOW + 1)),
            False,
        ),
        case(
            "refused: a context header added that was not signed (X-Tenant-Id absent when "
            "signed): every present context header is part of the signed text",
            [*signed(PAT), ["X-Tenant-Id", "ten_other"]],
            False,
        ),
        case(
            "refused: a signed context header removed (X-User-Roles)",
            without(jwt, "x-user-roles"),
            False,
        ),
        case(
            "valid: headers outside the context set are not signed and are ignored (the "
            "service must not read identity from them)",
            [*jwt, ["Accept", "application/json"], ["X-User-Name", "Mallory"]],
            True,
        ),
        case(
            "valid: a header outside the context set may appear twice",
            [*jwt, ["Accept", "application/json"], ["accept", "text/plain"]],
            True,
        ),
        case(
            "refused: a signed header twice with the same value (a framework may read either copy)",
            [*jwt, ["X-User-Id", "usr_01HZX3"]],
            False,
        ),
        case(
            "refused: a signed header twice, the second copy spelt in another case",
            [*jwt, ["x-user-roles", "admin"]],
            False,
        ),
        case(
            "refused: a signed header absent from the signed text appearing twice",
            [*signed(NONE), ["X-User-Id", "usr_a"], ["X-User-Id", "usr_a"]],
            False,
        ),
        case("refused: X-Gateway-Signature twice", [*jwt, ["x-gateway-signature", sig]], False),
        case(
            "refused: X-Gateway-Timestamp twice",
            [*jwt, ["X-Gateway-Timestamp", str(NOW)]],
            False,
        ),
        case(
            "refused: a v1 signature (the gateway signs v2, with a key per upstream)",
            replaced(jwt, SIGNATURE, "v1," + sig.rsplit("sig=", 1)[1]),
            False,
        ),
        case("refused: no X-Gateway-Signature", without(jwt, SIGNATURE), False),
        case("refused: no X-Gateway-Timestamp", without(jwt, TIMESTAMP), False),
        case(
            "refused: malformed signature (no aud= field)",
            replaced(jwt, SIGNATURE, sig.replace(",aud=billing", "")),
            False,
        ),
        case(
            "refused: malformed signature (fields out of order)",
            replaced(jwt, SIGNATURE, "v2,aud=billing,kid=k1," + sig.rsplit(",", 1)[1]),
            False,
        ),
        case("refused: malformed signature (not the format)", replaced(jwt, SIGNATURE, "x"), False),
        case(
            "refused: the signature with base64 padding added (compared exactly)",
            replaced(jwt, SIGNATURE, sig + "="),
            False,
        ),
        case(
            "refused: an empty sig= field",
            replaced(jwt, SIGNATURE, sig.rsplit("sig=", 1)[0] + "sig="),
            False,
        ),
        case(
            "refused: a non-digit timestamp (a decimal point)",
            replaced(jwt, TIMESTAMP, f"{NOW}.0"),
            False,
        ),
        case(
            "refused: a non-digit timestamp (a sign)",
            replaced(jwt, TIMESTAMP, f"+{NOW}"),
            False,
        ),
        case(
            "refused: a timestamp of non-ASCII digits (Unicode digits are not digits here)",
            replaced(jwt, TIMESTAMP, str(NOW).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))),
            False,
        ),
        case(
            "refused: a timestamp of 5000 digits (no Unix time; a verifier that turns it into "
            "a number must still refuse, not fail)",
            replaced(jwt, TIMESTAMP, "1" * 5000),
            False,
        ),
        case(
            "valid: no X-Auth-Method signed: the auth method is none",
            signed({"x-request-id": "req-bare-1"}),
            True,
        ),
        case(
            "valid: empty items in X-User-Roles are dropped; X-User-Email-Verified is true "
            "only when exactly `true`",
            signed({**PAT, "x-user-roles": ",user,,auditor,", "x-user-email-verified": "TRUE"}),
            True,
        ),
    ]


def judged(entry: dict[str, Any]) -> dict[str, Any]:
    """The case with the reference's verdict checked, and its Context when valid."""
    headers = MultiDict((name, value) for name, value in entry["headers"])
    try:
        context = verify(KEYS, AUDIENCE, entry["method"], entry["path"], headers, now=NOW)
    except ContextError as exc:
        if entry["valid"]:
            raise SystemExit(f"{entry['description']}: the reference refuses it: {exc}") from None
        return entry
    if not entry["valid"]:
        raise SystemExit(f"{entry['description']}: the reference accepts it")
    fields = dataclasses.asdict(context)
    fields["roles"] = list(context.roles)
    return {**entry, "context": fields}


# A header (a pair of strings) on one line, not four.
_PAIR = re.compile(r'\[\s+("(?:[^"\\]|\\.)*"),\s+("(?:[^"\\]|\\.)*")\s+\]')


def document() -> str:
    """The text of context-v2.json."""
    text = json.dumps(
        {
            "comment": "generated by kits/vectors/generate.py from gateway.context; do not edit",
            "audience": AUDIENCE,
            "now": NOW,
            "keys": ",".join(format_key(kid, key) for kid, key in KEYS.items()),
            "cases": [judged(entry) for entry in cases()],
        },
        indent=2,
        ensure_ascii=False,
    )
    return _PAIR.sub(r"[\1, \2]", text) + "\n"


def main(argv: Sequence[str]) -> int:
    text = document()
    if "--stdout" in argv:
        sys.stdout.write(text)
    else:
        FILE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
