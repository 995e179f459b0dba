"""`/auth/login` and `/auth/logout`, answered by the built-in upstream (docs/login-and-browsers.md).

Login: `GET /auth/login?return_to=URL` shows the form and sets the pre-session cookie its CSRF
token is bound to; `POST` (form-encoded `email`, `password`, `return_to`, `csrf`) logs in
through the auth core exactly as `POST /api/v1/auth/login` does (the same per-address limit,
login delays, bans, confirmed address when required, audit), sets the session cookie and
answers 303 to the return URL when it is acceptable (return_url.py), else to the default page.
A wrong password shows the form again with the error (401), a wait 429 with `Retry-After`.

Login CSRF (a page elsewhere logging the victim into the attacker's account): the form's token
is an HMAC of the nonce in `__Host-gw_login`, a cookie only this host can set and only a page
of this host is sent with (SameSite=Strict); a cross-site form has neither. When the browser
sends `Origin`, it must also name this host. Both missing or wrong: 403, the form shown again.

Logout: `GET /auth/logout` shows a button (a form with a token bound to the session);
`POST /auth/logout` ends the session everywhere and clears the cookie, when it carries that
token or passes auth_core/csrf.py's rule (a `fetch()` with `X-Requested-With` from a page on
the user's whitelist); otherwise 403 csrf_refused.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable
from urllib.parse import parse_qsl, urlsplit

from auth_core import headers as h
from auth_core.api.auth_endpoints import LOGIN_RATE
from auth_core.api.router import endpoint_limit_key
from auth_core.calls import CallInfo
from auth_core.errors import (
    EmailNotVerified,
    InvalidCredentials,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
)
from auth_core.models import Principal
from auth_core.service import AuthCore
from gateway.http.request import BodyError
from gateway.http.response import Response
from gateway.login.browser_auth import (
    RETURN_PARAMETER,
    refuse_cross_site_write,
    session_cookie_of,
)
from gateway.login.cookies import (
    LOGIN_COOKIE,
    clear_login_cookie,
    clear_session_cookie,
    cookie_value,
    login_cookie,
    session_cookie,
)
from gateway.login.page import login_page, logout_page, page_headers
from gateway.login.return_url import plausible, safe_return
from gateway.login.settings import LOGIN_PATH, LOGOUT_PATH, LoginSettings
from gateway.pipeline.exchange import Exchange

MAX_FORM = 16 * 1024
FORM_TYPE = b"application/x-www-form-urlencoded"
_WRONG = "The e-mail address or password is not right."
_EXPIRED = "This sign-in form has expired or was not sent from this page. Please try again."
_LOGIN_API = "/api/v1/auth/login"  # the login limit is shared with the API's


def call_info(exchange: Exchange) -> CallInfo:
    return CallInfo(
        ip=exchange.client_ip,
        user_agent=exchange.request.header_text(h.B_USER_AGENT),
        request_id=exchange.request_id,
    )


class LoginEndpoints:
    """The login page and logout, for the built-in upstream."""

    def __init__(self, core: AuthCore, settings: LoginSettings) -> None:
        self.core = core
        self.settings = settings

    def handles(self, path: str) -> bool:
        return path in (LOGIN_PATH, LOGOUT_PATH)

    async def __call__(self, exchange: Exchange) -> Response:
        method = exchange.request.method
        if exchange.path == LOGIN_PATH:
            if method in ("GET", "HEAD"):
                return self.show(exchange)
            if method == "POST":
                return await self.log_in(exchange)
        elif exchange.path == LOGOUT_PATH:
            if method in ("GET", "HEAD"):
                return await self.confirm_logout(exchange)
            if method == "POST":
                return await self.log_out(exchange)
        else:
            raise NotFound("no such page")
        raise MethodNotAllowed(method, ("GET", "HEAD", "POST"))

    # -- login ------------------------------------------------------------------------------

    def show(
        self,
        exchange: Exchange,
        *,
        return_to: str | None = None,
        status: int = 200,
        email: str = "",
        error: str | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> Response:
        """The form with a fresh pre-session nonce and the token bound to it."""
        if return_to is None:
            query = dict(parse_qsl(exchange.query[1:], keep_blank_values=True))
            return_to = query.get(RETURN_PARAMETER, "")
        nonce = secrets.token_urlsafe(32)
        token = self.core.cookie_sessions.form_token("login", nonce)
        body = login_page(
            action=LOGIN_PATH,
            return_to=plausible(return_to) or "",
            token=token,
            email=email,
            error=error,
        )
        headers = page_headers(exchange.request_id)
        headers.append((h.W_SET_COOKIE, login_cookie(nonce)))
        headers += extra or []
        return Response(status, headers, body)

    async def log_in(self, exchange: Exchange) -> Response:
        form = await read_form(exchange)
        email = form.get("email", "")
        password = form.get("password", "")
        return_to = form.get(RETURN_PARAMETER, "")
        if not self._login_form_genuine(exchange, form.get("csrf", "")):
            return self.show(exchange, return_to=return_to, status=403, email=email, error=_EXPIRED)
        if not email or not password:
            return self.show(exchange, return_to=return_to, status=400, email=email, error=_WRONG)
        core = self.core
        call = call_info(exchange)
        try:
            await self._limit(exchange)
            pair = await core.sessions.login(email, password, call)
        except InvalidCredentials as wrong:
            # Counted towards a ban as the API's 401 is (gateway/server/recording.py).
            core.bans.failed(exchange.client_ip, str(wrong.code), call)
            return self.show(exchange, return_to=return_to, status=401, email=email, error=_WRONG)
        except RateLimited as wait:
            retry = [(name.encode(), value.encode()) for name, value in wait.headers.items()]
            message = "Too many attempts. Please wait a while and try again."
            return self.show(
                exchange, return_to=return_to, status=429, email=email, error=message, extra=retry
            )
        except EmailNotVerified:
            message = (
                "Please confirm your e-mail address first, with the link mailed to you, "
                "then sign in again."
            )
            return self.show(exchange, return_to=return_to, status=403, email=email, error=message)
        target = await safe_return(
            return_to, exchange.table, core.tenants, self.settings.default_return
        )
        session = pair.session
        value = core.cookie_sessions.sign(session.id)
        max_age = max(0, int(session.expires_at - time.time()))
        headers = [
            (h.W_LOCATION, target.encode()),
            (h.W_SET_COOKIE, session_cookie(value, max_age, self.settings.cookie_domain)),
            (h.W_SET_COOKIE, clear_login_cookie()),
            *page_headers(exchange.request_id)[1:],
        ]
        return Response(303, headers, b"")

    def _login_form_genuine(self, exchange: Exchange, token: str) -> bool:
        request = exchange.request
        nonce = cookie_value(request.header_values(h.B_COOKIE), LOGIN_COOKIE)
        if nonce is None or not token:
            return False
        if not self.core.cookie_sessions.form_token_ok("login", nonce, token):
            return False
        origin = request.header_text(h.B_ORIGIN)
        if origin is None:
            return True
        try:
            sent_from = urlsplit(origin).netloc.lower()
        except ValueError:
            return False
        # This host, as the browser named it: Host, or the public name a trusted proxy in
        # front forwarded (X-Forwarded-Host), when it rewrote Host.
        hosts = [request.header_text(h.B_HOST)]
        if exchange.peer_trusted:
            hosts.append(request.header_text(h.B_X_FORWARDED_HOST))
        return any(host and sent_from == host.strip().lower() for host in hosts)

    async def _limit(self, exchange: Exchange) -> None:
        key = endpoint_limit_key("POST", _LOGIN_API, "ip:" + (exchange.client_ip or "-"))
        verdict = await self.core.limiter.check([key], [LOGIN_RATE])
        if not verdict.allowed:
            raise RateLimited(
                "too many logins from this address",
                verdict.retry_after,
                limit=verdict.limit,
                policy=verdict.policy,
            )

    # -- logout -----------------------------------------------------------------------------

    async def _principal(self, exchange: Exchange) -> Principal | None:
        value = session_cookie_of(exchange)
        if value is None:
            return None
        try:
            found = self.core.cookie_sessions.authenticate(value)
            if found is None or isinstance(found, Principal):
                return found
            return await found
        except Unauthorized:
            return None

    async def confirm_logout(self, exchange: Exchange) -> Response:
        principal = await self._principal(exchange)
        if principal is None or principal.session_id is None:
            return self._signed_out(exchange)
        token = self.core.cookie_sessions.form_token("logout", principal.session_id)
        return Response(
            200, page_headers(exchange.request_id), logout_page(action=LOGOUT_PATH, token=token)
        )

    async def log_out(self, exchange: Exchange) -> Response:
        principal = await self._principal(exchange)
        if principal is None or principal.session_id is None:
            return self._signed_out(exchange)  # nothing to end; the cookie goes all the same
        form = await read_form(exchange, required=False)
        token = form.get("csrf", "")
        cookies = self.core.cookie_sessions
        if not (token and cookies.form_token_ok("logout", principal.session_id, token)):
            pending: Awaitable[None] | None = refuse_cross_site_write(
                exchange, principal, self.core.tenants, "POST"
            )
            if pending is not None:
                await pending
        await self.core.sessions.logout(principal, call_info(exchange))
        return self._signed_out(exchange)

    def _signed_out(self, exchange: Exchange) -> Response:
        headers = [
            (h.W_LOCATION, self.settings.login_url.encode()),
            (h.W_SET_COOKIE, clear_session_cookie(self.settings.cookie_domain)),
            *page_headers(exchange.request_id)[1:],
        ]
        return Response(303, headers, b"")


async def read_form(exchange: Exchange, *, required: bool = True) -> dict[str, str]:
    """The form-encoded body: each field once, at most MAX_FORM bytes; 400 otherwise."""
    request = exchange.request
    content_type = (request.header(h.B_CONTENT_TYPE) or b"").split(b";")[0].strip().lower()
    if content_type != FORM_TYPE:
        if not required:
            return {}
        raise InvalidRequest("the form must be sent as application/x-www-form-urlencoded")
    body = request.body
    data = b""
    if body is not None:
        request.send_continue()
        parts: list[bytes] = []
        size = 0
        try:
            while chunk := await body.read():
                size += len(chunk)
                if size > MAX_FORM:
                    raise PayloadTooLarge(MAX_FORM)
                parts.append(chunk)
        except BodyError as exc:
            raise InvalidRequest(exc.detail, status=exc.status) from None
        data = b"".join(parts)
    try:
        pairs = parse_qsl(
            data.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=16
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the form is not valid UTF-8 form encoding") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest("a form field was sent twice")
        form[name] = value
    return form
