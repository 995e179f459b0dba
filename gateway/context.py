"""Signed context headers (docs/upstream-services.md): how the gateway tells an
upstream who is calling, and how the upstream checks it without validating anything again.

This module needs nothing but the standard library, so a downstream service can import it
(or copy it). Each upstream has a key of its own, derived from a GATEWAY_SERVICE_SECRET entry
(`secret`, its UTF-8 bytes), so that what one upstream holds cannot sign for another; the
audience is the upstream's name in routes.yaml:

    key = HMAC-SHA256(secret, b"gateway context v2\\n" + audience)
    names = ["x-request-id", "x-auth-method", "x-user-id", "x-user-email",
             "x-user-email-verified", "x-user-roles", "x-tenant-id", "x-session-id",
             "x-credential-id"]
    lines = ["v2", audience, method, path, timestamp] + [f"{n}:{headers[n]}"
                                                         for n in sorted(names) if n in headers]
    sig = base64url(HMAC-SHA256(key, "\\n".join(lines)), no padding)
    X-Gateway-Signature: v2,kid=<kid>,aud=<audience>,sig=<sig>

`path` is the path with query exactly as sent to the upstream. A verifier rejects a signature
for another audience, older than 60 s or more than 5 s in the future.

For aiohttp services: `app.middlewares.append(context_middleware(keys, "billing"))` where
`keys` is `parse_keys(<the output of gateway context-key billing>)`; then
`request[gateway_context_key()]` is a Context, or the request got 401.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

VERSION = "v2"
KEY_LABEL = b"gateway context v2\n"
# The context headers by their lower-case names, the form the signed text uses. Spelt here
# rather than taken from auth_core/headers.py, the one place of header names otherwise, so that
# this file keeps needing nothing but the standard library (a service may copy it);
# tests/test_header_constants.py holds the two the same.
REQUEST_ID: Final = "x-request-id"
AUTH_METHOD: Final = "x-auth-method"
USER_ID: Final = "x-user-id"
USER_EMAIL: Final = "x-user-email"
USER_EMAIL_VERIFIED: Final = "x-user-email-verified"
USER_ROLES: Final = "x-user-roles"
TENANT_ID: Final = "x-tenant-id"
SESSION_ID: Final = "x-session-id"
CREDENTIAL_ID: Final = "x-credential-id"
GATEWAY_SIGNATURE: Final = "x-gateway-signature"
GATEWAY_TIMESTAMP: Final = "x-gateway-timestamp"
SIGNED = (
    REQUEST_ID,
    AUTH_METHOD,
    USER_ID,
    USER_EMAIL,
    USER_EMAIL_VERIFIED,
    USER_ROLES,
    TENANT_ID,
    SESSION_ID,
    CREDENTIAL_ID,
)
_SORTED = tuple(sorted(SIGNED))
MAX_AGE = 60.0
MAX_FUTURE = 5.0


class ContextError(Exception):
    """The context headers cannot be trusted; the message says why."""


@dataclass(frozen=True, slots=True)
class Context:
    """Who the gateway says is calling."""

    auth_method: str
    request_id: str | None
    user_id: str | None
    email: str | None
    email_verified: bool  # whether the user proved they receive mail at `email`
    roles: tuple[str, ...]
    tenant_id: str | None
    session_id: str | None
    credential_id: str | None
    timestamp: int


def derive_key(secret: bytes, audience: str) -> bytes:
    """The key that signs contexts for `audience` (an upstream's name in routes.yaml), from
    the UTF-8 bytes of a GATEWAY_SERVICE_SECRET entry's secret."""
    return hmac.new(secret, KEY_LABEL + audience.encode(), hashlib.sha256).digest()


def derive_keys(secrets: Iterable[tuple[str, bytes]], audience: str) -> dict[str, bytes]:
    """{kid: key} for `audience`, from (kid, secret) pairs (a keyring's entries)."""
    return {kid: derive_key(secret, audience) for kid, secret in secrets}


def format_key(kid: str, key: bytes) -> str:
    """`kid:<base64url key, no padding>`, as `gateway context-key` prints it."""
    return f"{kid}:{base64.urlsafe_b64encode(key).rstrip(b'=').decode()}"


def parse_keys(text: str) -> dict[str, bytes]:
    """{kid: key} from `gateway context-key` output: `kid:<base64url>` entries, one a line or
    comma-separated (for an environment variable). ValueError on anything else."""
    keys: dict[str, bytes] = {}
    for item in text.replace(",", "\n").split():
        kid, sep, encoded = item.partition(":")
        if not sep or not kid or not encoded:
            raise ValueError("each entry must be kid:<base64url key>")
        try:
            padded = encoded + "=" * (-len(encoded) % 4)
            key = base64.b64decode(padded, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"the key of kid {kid!r} is not base64url") from None
        if len(key) != 32 or kid in keys:
            raise ValueError(f"the key of kid {kid!r} is not 32 bytes, or the kid appears twice")
        keys[kid] = key
    if not keys:
        raise ValueError("no kid:<base64url key> entry")
    return keys


def signed_text(
    audience: str, method: str, path: str, timestamp: str, values: Mapping[str, str]
) -> str:
    """The text the signature is the HMAC of (its lines joined by \\n)."""
    return f"{VERSION}\n{audience}\n{_after_audience(method, path, timestamp, values)}"


def _after_audience(method: str, path: str, timestamp: str, values: Mapping[str, str]) -> str:
    lines = [method, path, timestamp]
    lines.extend(f"{name}:{values[name]}" for name in _SORTED if name in values)
    return "\n".join(lines)


def _digest(key: bytes, text: str) -> str:
    mac = hmac.new(key, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


class Signer:
    """Signatures for one key and audience, the key's pads and the text's first two lines
    (`v2`, the audience) hashed once (RFC 2104): a signature is then two hash copies and
    updates, about a third of `hmac.new`'s cost, which the gateway pays on every request."""

    def __init__(self, kid: str, key: bytes, audience: str) -> None:
        padded = (key if len(key) <= 64 else hashlib.sha256(key).digest()).ljust(64, b"\0")
        self._inner = hashlib.sha256(padded.translate(_IPAD))
        self._inner.update(f"{VERSION}\n{audience}\n".encode())
        self._outer = hashlib.sha256(padded.translate(_OPAD))
        self.audience = audience
        self.prefix = f"{VERSION},kid={kid},aud={audience},sig="

    def signature(self, rest: bytes) -> str:
        """The X-Gateway-Signature value for the signed text whose lines after the audience
        (method, path, timestamp, the header lines) are `rest`."""
        inner = self._inner.copy()
        inner.update(rest)
        outer = self._outer.copy()
        outer.update(inner.digest())
        # binascii directly: base64.urlsafe_b64encode is two Python calls, interpreted even in
        # the compiled build. A SHA-256 digest is 44 characters of base64, the last one `=`.
        encoded = binascii.b2a_base64(outer.digest(), newline=False)[:43]
        return self.prefix + encoded.translate(_URLSAFE).decode()

    def sign(
        self, method: str, path: str, values: Mapping[str, str], timestamp: int | None = None
    ) -> tuple[str, str]:
        """(X-Gateway-Timestamp, X-Gateway-Signature) for the lower-case `values`."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return stamp, self.signature(_after_audience(method, path, stamp, values).encode())


def sign(
    kid: str,
    key: bytes,
    audience: str,
    method: str,
    path: str,
    values: Mapping[str, str],
    timestamp: int | None = None,
) -> tuple[str, str]:
    """(X-Gateway-Timestamp, X-Gateway-Signature) for the lower-case `values`, with the key
    of `audience` (derive_key)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = _digest(key, signed_text(audience, method, path, stamp, values))
    return stamp, f"{VERSION},kid={kid},aud={audience},sig={digest}"


def _fields(signature: str) -> tuple[str, str, str]:
    """(kid, audience, sig) of a v2 X-Gateway-Signature value; ContextError otherwise."""
    parts = signature.split(",")
    if parts[0] == "v1":
        raise ContextError("a v1 signature: the gateway signs v2, with a key per upstream")
    if (
        len(parts) != 4
        or parts[0] != VERSION
        or not parts[1].startswith("kid=")
        or not parts[2].startswith("aud=")
        or not parts[3].startswith("sig=")
    ):
        raise ContextError("no gateway signature")
    return parts[1][4:], parts[2][4:], parts[3][4:]


def verify(
    keys: Mapping[str, bytes],
    audience: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    now: float | None = None,
) -> Context:
    """The Context of a request to `audience` (this service's upstream name in routes.yaml)
    whose headers (any case) carry a valid signature; `keys` are {kid: key} for that audience
    (parse_keys, derive_keys).

    `headers` may be a multi-dict (aiohttp's): a signed header present twice is refused, since
    a service could read the copy that was not signed.
    """
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in lowered and (key in SIGNED or key.startswith("x-gateway-")):
            raise ContextError(f"{key} appears more than once")
        lowered[key] = value
    signature = lowered.get(GATEWAY_SIGNATURE, "")
    stamp = lowered.get(GATEWAY_TIMESTAMP, "")
    if not (signature.isascii() and stamp.isascii()):
        raise ContextError("the signature headers are not ASCII")
    kid, signed_for, sig = _fields(signature)
    if signed_for != audience:
        raise ContextError("the signature is for another audience")
    secret = keys.get(kid)
    if secret is None:
        raise ContextError("signed with an unknown key")
    # At most 12 digits: int() of a longer one could raise ValueError (Python's 4300-digit
    # limit) where a verifier must refuse with ContextError; Unix seconds have 10 until 2286.
    if not stamp.isdigit() or len(stamp) > 12:
        raise ContextError("no gateway timestamp")
    current = time.time() if now is None else now
    if int(stamp) < current - MAX_AGE or int(stamp) > current + MAX_FUTURE:
        raise ContextError("the signature is too old or from the future")
    values = {name: lowered[name] for name in SIGNED if name in lowered}
    expected = _digest(secret, signed_text(audience, method, path, stamp, values))
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise ContextError("the signature does not match")
    roles = values.get(USER_ROLES, "")
    return Context(
        auth_method=values.get(AUTH_METHOD, "none"),
        request_id=values.get(REQUEST_ID),
        user_id=values.get(USER_ID),
        email=values.get(USER_EMAIL),
        email_verified=values.get(USER_EMAIL_VERIFIED) == "true",
        roles=tuple(role for role in roles.split(",") if role),
        tenant_id=values.get(TENANT_ID),
        session_id=values.get(SESSION_ID),
        credential_id=values.get(CREDENTIAL_ID),
        timestamp=int(stamp),
    )


def context_middleware(
    keys: Mapping[str, bytes], audience: str
) -> Callable[[Any, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]:
    """An aiohttp middleware that answers 401 unless the request carries a valid signature for
    `audience` (this service's upstream name in routes.yaml) made with one of `keys`."""
    from aiohttp import web

    key = gateway_context_key()

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            context = verify(keys, audience, request.method, request.raw_path, request.headers)
        except ContextError as exc:
            raise web.HTTPUnauthorized(text=str(exc)) from None
        request[key] = context
        return await handler(request)

    return middleware


@functools.cache
def gateway_context_key() -> Any:
    """The key under which context_middleware stores the Context on a request: aiohttp's
    typed RequestKey where it has one (3.14 warns about plain str keys), else the str."""
    from aiohttp import web

    factory = getattr(web, "RequestKey", None)
    return factory("gateway_context", Context) if factory is not None else "gateway_context"
