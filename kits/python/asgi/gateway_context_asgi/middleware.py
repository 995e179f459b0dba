"""A pure ASGI middleware (Starlette's shape: `__init__(app, **options)` and one `__call__`)
that lets through only requests whose context the gateway signed for this service."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from http import HTTPStatus
from typing import Any

from multidict import MultiDict

from gateway.context import Context, ContextError, parse_keys, verify

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATE_KEY = "gateway"
INVALID_CONTEXT = "invalid_context"  # the `error` code of a refusal  # request.state.gateway
# A close code of the private range (RFC 6455 7.4.2) that reads as HTTP's 401, used where the
# server cannot answer a websocket handshake with an HTTP response.
WEBSOCKET_UNAUTHORIZED = 4401
_DENIAL = "websocket.http.response"  # the ASGI extension that answers a handshake with HTTP
_PROBLEM_JSON = b"application/problem+json"
# Spelt here, lower-case as ASGI wants them, since this module runs in the service.
_CONTENT_TYPE = b"content-type"
_WWW_AUTHENTICATE = b"www-authenticate"


def context_of_scope(
    scope: Scope, keys: Mapping[str, bytes], audience: str, now: float | None = None
) -> Context:
    """The verified Context of an HTTP or websocket scope; ContextError if it has none.

    The path is the raw one with its query, as the gateway signed it (`scope["path"]` is
    percent-decoded); headers go over as the pairs the server received, repeats and all, so
    that a signed header sent twice is refused rather than read once."""
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    query = scope.get("query_string", b"")
    if query:
        path += "?" + query.decode("latin-1")
    # The websocket handshake is a GET, and that is what the gateway signed.
    method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
    # Values are UTF-8 on the wire (an e-mail may not be ASCII); undecodable bytes cannot
    # be what the gateway signed, and then the signature does not match.
    headers = MultiDict(
        (name.decode("latin-1"), value.decode("utf-8", "replace"))
        for name, value in scope["headers"]
    )
    return verify(keys, audience, method, path, headers, now)


def problem(status: int, code: str, detail: str) -> bytes:
    """A problem+json document (RFC 9457), shaped as the gateway's own refusals are."""
    return json.dumps(
        {
            "type": f"urn:gateway:error:{code}",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "error": code,
        }
    ).encode()


class GatewayContextMiddleware:
    """Answers 401 problem+json unless the request carries a context signed for `audience`
    with one of `keys`; otherwise puts the Context in `scope["state"]["gateway"]`
    (Starlette's `request.state.gateway`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: str | Mapping[str, bytes],
        audience: str,
        exempt_paths: Collection[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not audience:
            raise ValueError("audience must be this service's upstream name in routes.yaml")
        try:
            self.keys = parse_keys(keys) if isinstance(keys, str) else dict(keys)
        except ValueError as exc:
            raise ValueError(
                f"keys must be `gateway context-key {audience}` output: {exc}"
            ) from None
        self.app = app
        self.audience = audience
        self.exempt_paths = frozenset(exempt_paths)
        self.clock = clock
        self._challenge = f'GatewayContext audience="{audience}"'.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        try:
            context = context_of_scope(scope, self.keys, self.audience, self.clock())
        except ContextError as exc:
            await self._refuse(scope, send, str(exc))
            return
        # A scope of its own: the server's `state` dict may be shared (lifespan state).
        scope = {**scope, "state": {**scope.get("state", {}), STATE_KEY: context}}
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, detail: str) -> None:
        body = problem(401, INVALID_CONTEXT, detail)
        headers = [
            (_CONTENT_TYPE, _PROBLEM_JSON),
            (_WWW_AUTHENTICATE, self._challenge),
        ]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif _DENIAL in scope.get("extensions", {}):
            await send({"type": f"{_DENIAL}.start", "status": 401, "headers": headers})
            await send({"type": f"{_DENIAL}.body", "body": body})
        else:
            # Closed before it was accepted: the server refuses the handshake (403).
            await send({"type": "websocket.close", "code": WEBSOCKET_UNAUTHORIZED})
