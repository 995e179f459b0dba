"""The built-in upstream `auth_core`: the auth core's API answered in this process, and the
forwardAuth endpoint for other proxies. Reached through the route table like any upstream,
with no HTTP hop; the path is the canonical one (strip_prefix does not apply)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from auth_core import headers as h
from auth_core.api import ApiCall, AuthApi
from auth_core.api.openapi import VALIDATE_PATH
from auth_core.service import AuthCore, CallInfo
from auth_core.store import DatabaseUnavailable
from gateway.errors import AuthUnavailable, InvalidRequest, PayloadTooLarge
from gateway.forward_auth import ForwardAuth
from gateway.http.request import BodyError
from gateway.http.response import Response
from gateway.pipeline.authorize import Authorize
from gateway.pipeline.exchange import Exchange
from gateway.problem import SERVER_NAME

MAX_API_BODY = 1024 * 1024
_BARE = [(h.W_SERVER, SERVER_NAME.encode())]
_JSON = [(h.W_CONTENT_TYPE, b"application/json"), *_BARE]


class AuthCoreUpstream:
    """The pipeline's terminal step for routes with `upstream: auth_core`."""

    def __init__(
        self, core: AuthCore, api: AuthApi, forward_auth: ForwardAuth, authorize: Authorize
    ) -> None:
        self.core = core
        self.api = api
        self.forward_auth = forward_auth
        self.authorize = authorize

    async def __call__(self, exchange: Exchange) -> Response:
        if exchange.path == VALIDATE_PATH:
            return await self.forward_auth(exchange)
        request = exchange.request
        body = await _read_body(exchange)
        call = ApiCall(
            method=request.method,
            path=exchange.path,
            query=dict(parse_qsl(exchange.query[1:], keep_blank_values=True)),
            header=request.header_text,
            body=body,
            info=CallInfo(
                ip=exchange.client_ip,
                user_agent=request.header_text(h.B_USER_AGENT),
                request_id=exchange.request_id,
            ),
            # Mails name the configured public address, never the request's Host: a client
            # could otherwise have reset links point at a host of its choosing.
            base_url=self.core.settings.public_url or "",
            principal=exchange.principal,
            admit=lambda principal: self.authorize.check_origin(exchange, principal),
            platform_origins=exchange.table.origins,
        )
        try:
            result = await self.api.dispatch(call)
        except DatabaseUnavailable:
            raise AuthUnavailable("the auth core's database is unavailable") from None
        headers = [*(_JSON if result.body is not None else _BARE)]
        headers.append((h.W_X_REQUEST_ID, exchange.request_id.encode()))
        headers += [(name.encode(), value.encode()) for name, value in result.headers.items()]
        headers += exchange.response_headers
        return Response(result.status, headers, result.encoded())


async def _read_body(exchange: Exchange) -> bytes:
    body = exchange.request.body
    if body is None:
        return b""
    exchange.request.send_continue()
    limit = min(MAX_API_BODY, exchange.route.max_body if exchange.route else MAX_API_BODY)
    parts: list[bytes] = []
    size = 0
    try:
        while chunk := await body.read():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            parts.append(chunk)
    except BodyError as exc:
        raise InvalidRequest(exc.detail, status=exc.status) from None
    return b"".join(parts)
