"""The built-in upstream `auth_core`: the auth core's API answered in this process, the
forwardAuth endpoint for other proxies, and the login page (`/auth/login`, `/auth/logout`).
Reached through the route table like any upstream, with no HTTP hop; the path is the
canonical one (strip_prefix does not apply)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from auth_core import headers as h
from auth_core.api import ApiCall, AuthApi
from auth_core.api.openapi import VALIDATE_PATH
from auth_core.errors import Unauthorized
from auth_core.models import Principal
from auth_core.service import AuthCore, CallInfo
from auth_core.store import DatabaseUnavailable
from gateway.errors import AuthUnavailable, InvalidRequest, PayloadTooLarge
from gateway.forward_auth import ForwardAuth
from gateway.http.request import BodyError
from gateway.http.response import Response
from gateway.login.browser_auth import session_cookie_of
from gateway.login.cookies import clear_session_cookie
from gateway.login.endpoints import LoginEndpoints
from gateway.pipeline.authorize import Authorize
from gateway.pipeline.exchange import Exchange
from gateway.problem import SERVER_NAME

MAX_API_BODY = 1024 * 1024
_BARE = [(h.W_SERVER, SERVER_NAME.encode())]
_JSON = [(h.W_CONTENT_TYPE, b"application/json"), *_BARE]
LOGOUT_PATH = "/api/v1/auth/logout"


class AuthCoreUpstream:
    """The pipeline's terminal step for routes with `upstream: auth_core`."""

    def __init__(
        self,
        core: AuthCore,
        api: AuthApi,
        forward_auth: ForwardAuth,
        authorize: Authorize,
        login: LoginEndpoints,
    ) -> None:
        self.core = core
        self.api = api
        self.forward_auth = forward_auth
        self.authorize = authorize
        self.login = login

    async def __call__(self, exchange: Exchange) -> Response:
        if exchange.path == VALIDATE_PATH:
            return await self.forward_auth(exchange)
        if self.login.handles(exchange.path):
            try:
                return await self.login(exchange)
            except DatabaseUnavailable:
                raise AuthUnavailable("the auth core's database is unavailable") from None
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
            upstreams=exchange.table.upstreams,
        )
        try:
            result = await self.api.dispatch(call)
        except DatabaseUnavailable:
            raise AuthUnavailable("the auth core's database is unavailable") from None
        headers = [*(_JSON if result.body is not None else _BARE)]
        headers.append((h.W_X_REQUEST_ID, exchange.request_id.encode()))
        headers += [(name.encode(), value.encode()) for name, value in result.headers.items()]
        headers += exchange.response_headers
        if exchange.path == LOGOUT_PATH and result.status < 300:
            headers += await self._end_cookie_session(exchange, call.principal)
        return Response(result.status, headers, result.encoded())

    async def _end_cookie_session(
        self, exchange: Exchange, caller: Principal | None
    ) -> list[tuple[bytes, bytes]]:
        """The API's logout also ends this browser's login-page session (when it is the same
        user's) and clears its cookie (docs/login-and-browsers.md). The bearer
        token the logout needs cannot be sent by a cross-site page: no CSRF check is needed."""
        value = session_cookie_of(exchange)
        if value is None:
            return []
        try:
            found = self.core.cookie_sessions.authenticate(value)
            cookie_user = found if found is None or isinstance(found, Principal) else await found
        except Unauthorized:
            cookie_user = None  # ended already
        if (
            cookie_user is not None
            and caller is not None
            and cookie_user.user_id == caller.user_id
            and cookie_user.session_id is not None
            and cookie_user.session_id != caller.session_id
        ):
            await self.core.sessions.revoke_session(cookie_user.session_id, "logout")
        return [(h.W_SET_COOKIE, clear_session_cookie(self.login.settings.cookie_domain))]


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
