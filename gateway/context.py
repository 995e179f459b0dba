"""Signed context headers (SPEC section 7): how the gateway tells an upstream who is calling,
and how the upstream checks it without validating anything again.

This module needs nothing but the standard library, so a downstream service can import it
(or copy it). The signature, where `secret` is the UTF-8 bytes of a GATEWAY_SERVICE_SECRET
entry and `path` is the path with query exactly as sent to the upstream:

    names = ["x-request-id", "x-auth-method", "x-user-id", "x-user-email", "x-user-roles",
             "x-tenant-id", "x-session-id", "x-credential-id"]
    lines = ["v1", method, path, timestamp] + [f"{n}:{headers[n]}" for n in sorted(names)
                                               if n in headers]
    sig = base64url(HMAC-SHA256(secret, "\\n".join(lines)), no padding)
    X-Gateway-Signature: v1,kid=<kid>,sig=<sig>

A verifier rejects a signature older than 60 s or more than 5 s in the future.

For aiohttp services: `app.middlewares.append(context_middleware({"k1": b"secret"}))`, then
`request[gateway_context_key()]` is a Context, or the request got 401.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

SIGNED = (
    "x-request-id",
    "x-auth-method",
    "x-user-id",
    "x-user-email",
    "x-user-roles",
    "x-tenant-id",
    "x-session-id",
    "x-credential-id",
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
    roles: tuple[str, ...]
    tenant_id: str | None
    session_id: str | None
    credential_id: str | None
    timestamp: int


def _digest(
    secret: bytes, method: str, path: str, timestamp: str, values: Mapping[str, str]
) -> str:
    lines = ["v1", method, path, timestamp]
    lines.extend(f"{name}:{values[name]}" for name in _SORTED if name in values)
    mac = hmac.new(secret, "\n".join(lines).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


class Signer:
    """HMAC-SHA256 signatures for one secret with the key's pads hashed once (RFC 2104): a
    signature is then two hash copies and updates, about a third of `hmac.new`'s cost, which
    the gateway pays on every request."""

    def __init__(self, kid: str, secret: bytes) -> None:
        key = secret if len(secret) <= 64 else hashlib.sha256(secret).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))
        self.prefix = f"v1,kid={kid},sig="

    def signature(self, message: bytes) -> str:
        """The X-Gateway-Signature value for the signed `message` (see _digest's lines)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return self.prefix + base64.urlsafe_b64encode(outer.digest()).rstrip(b"=").decode()


def sign(
    kid: str,
    secret: bytes,
    method: str,
    path: str,
    values: Mapping[str, str],
    timestamp: int | None = None,
) -> tuple[str, str]:
    """(X-Gateway-Timestamp, X-Gateway-Signature) for the lower-case `values` given."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return stamp, f"v1,kid={kid},sig={_digest(secret, method, path, stamp, values)}"


def verify(
    keys: Mapping[str, bytes],
    method: str,
    path: str,
    headers: Mapping[str, str],
    now: float | None = None,
) -> Context:
    """The Context of a request whose headers (any case) carry a valid signature.

    `headers` may be a multi-dict (aiohttp's): a signed header present twice is refused, since
    a service could read the copy that was not signed.
    """
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in lowered and (key in SIGNED or key.startswith("x-gateway-")):
            raise ContextError(f"{key} appears more than once")
        lowered[key] = value
    signature = lowered.get("x-gateway-signature", "")
    stamp = lowered.get("x-gateway-timestamp", "")
    if not (signature.isascii() and stamp.isascii()):
        raise ContextError("the signature headers are not ASCII")
    parts = dict(part.split("=", 1) for part in signature.split(",")[1:] if "=" in part)
    if not signature.startswith("v1,") or "kid" not in parts or "sig" not in parts:
        raise ContextError("no gateway signature")
    secret = keys.get(parts["kid"])
    if secret is None:
        raise ContextError("signed with an unknown key")
    if not stamp.isdigit():
        raise ContextError("no gateway timestamp")
    current = time.time() if now is None else now
    if int(stamp) < current - MAX_AGE or int(stamp) > current + MAX_FUTURE:
        raise ContextError("the signature is too old or from the future")
    values = {name: lowered[name] for name in SIGNED if name in lowered}
    expected = _digest(secret, method, path, stamp, values)
    if not hmac.compare_digest(expected.encode(), parts["sig"].encode()):
        raise ContextError("the signature does not match")
    roles = values.get("x-user-roles", "")
    return Context(
        auth_method=values.get("x-auth-method", "none"),
        request_id=values.get("x-request-id"),
        user_id=values.get("x-user-id"),
        email=values.get("x-user-email"),
        roles=tuple(role for role in roles.split(",") if role),
        tenant_id=values.get("x-tenant-id"),
        session_id=values.get("x-session-id"),
        credential_id=values.get("x-credential-id"),
        timestamp=int(stamp),
    )


def context_middleware(
    keys: Mapping[str, bytes],
) -> Callable[[Any, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]:
    """An aiohttp middleware that answers 401 unless the request carries a valid signature."""
    from aiohttp import web

    key = gateway_context_key()

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            context = verify(keys, request.method, request.raw_path, request.headers)
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
