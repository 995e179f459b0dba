"""End users' endpoints: signup, login, refresh, logout, me, session, e-mail and password flows
(docs/authentication.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from auth_core import headers as h
from auth_core.api.router import (
    PUBLIC,
    SESSION,
    USER,
    ApiCall,
    ApiResponse,
    AuthApi,
    Endpoint,
)
from auth_core.api.schemas import (
    EMAIL,
    NULLABLE_PERSON_NAME,
    OBJECT,
    PASSWORD,
    SESSION_STATUS,
    TOKEN_PAIR,
    USER_SCHEMA,
    obj,
    string,
    token,
)
from auth_core.api.session_cookie import (
    COOKIE_NAME,
    clear_cookie,
    refuse_forged,
    refuse_forged_login,
    require_refresh_token,
    sent_by_a_page,
    set_cookie,
)
from auth_core.errors import InvalidRequest
from auth_core.limits import Rate
from auth_core.origins import OriginWhitelist

if TYPE_CHECKING:
    from auth_core.service import AuthCore
    from auth_core.sessions import TokenPair

NO_STORE = {h.CACHE_CONTROL: "no-store"}
CSRF_REFUSAL = (
    403,
    "`csrf_refused` (GATEWAY_SESSION_COOKIES): authenticated by the session cookie without "
    "X-Requested-With, or from an origin off the whitelist",
)
LOGIN_CSRF_REFUSAL = (
    "`csrf_refused` (GATEWAY_SESSION_COOKIES): sent by a page (with Origin or Referer) "
    "without X-Requested-With, or from an origin neither on the top-level `origins` nor on "
    "any tenant's"
)
NOT_JSON = (
    415,
    "`invalid_request` (GATEWAY_SESSION_COOKIES): the body was not sent as "
    "Content-Type: application/json",
)


# Default limits per client address (shared by the replicas through Redis): generous for
# people, tight for scripts. Failed logins have their own, stricter limits (sessions.py).
LOGIN_RATE = Rate(30, 60.0)
REFRESH_RATE = Rate(120, 60.0)
MAIL_RATE = Rate(10, 60.0)  # signup, forgot-password and verify-email/resend send mail


def text_field(document: dict[str, Any], name: str) -> str:
    """A required, non-empty string field."""
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name} must be a non-empty string")
    return value


def optional_text(document: dict[str, Any], name: str) -> str | None:
    return None if document.get(name) is None else text_field(document, name)


def _nobody(origin: str) -> bool:
    """The whitelist of a request no page sent: never asked (csrf.py lets it pass first), and
    so not worth a read of the tenants' origins."""
    return False


def register(api: AuthApi, core: AuthCore) -> None:
    sessions = core.sessions
    accounts = core.accounts
    cookies = core.settings.session_cookies

    async def opening_whitelist(call: ApiCall) -> Callable[[str], bool]:
        """Who may log in or sign up from a page: before the user is known, any origin a
        preflight of the auth core's endpoints is answered for (the top-level `origins`, or
        any tenant's); the user's own list applies to what the session does next."""
        platform = call.platform_origins or OriginWhitelist(())
        index = core.tenants.cached_origin_index() or await core.tenants.load_origin_index()
        return lambda origin: platform.allows(origin) or index.origins.allows(origin)

    async def refuse_forged_opening(call: ApiCall) -> None:
        """Login CSRF (session_cookie.py), with cookie sessions only: without them a login
        plants nothing in the browser."""
        if not cookies:
            return
        allowed = await opening_whitelist(call) if sent_by_a_page(call.header) else _nobody
        refuse_forged_login(call.header, allowed)

    async def signup(call: ApiCall) -> ApiResponse:
        await refuse_forged_opening(call)
        body = call.json()
        email = text_field(body, "email")
        password = text_field(body, "password")
        name = optional_text(body, "name")
        user = await accounts.signup(email, password, name, call.info, call.base_url)
        return ApiResponse(201, {"user": user.public()})

    def pair_answer(pair: TokenPair) -> ApiResponse:
        """A token pair: the refresh token in the body, or with cookie sessions in the cookie
        only."""
        body = pair.body()
        if not cookies:
            return ApiResponse(200, body, NO_STORE)
        del body["refresh_token"]
        cookie = set_cookie(pair.refresh_token, int(core.settings.refresh_ttl))
        return ApiResponse(200, body, {**NO_STORE, h.SET_COOKIE: cookie})

    async def whitelist_of(call: ApiCall, refresh_token: str) -> OriginWhitelist:
        """The origins whose pages may use this refresh token's cookie: its user's tenant's,
        or for a user without one the top-level `origins` (none given: none)."""
        tenant_id = await sessions.tenant_of(refresh_token)
        if tenant_id is None:
            return call.platform_origins or OriginWhitelist(())
        policy = core.tenants.cached_policy(tenant_id) or await core.tenants.load_policy(tenant_id)
        return policy.origins if policy is not None else OriginWhitelist(())

    async def cookie_token(call: ApiCall) -> str:
        """The session cookie's refresh token, once the request passed the CSRF rule."""
        token = require_refresh_token(call.header(h.B_COOKIE))
        allowed = await whitelist_of(call, token)
        refuse_forged(call.header, call.method, allowed.allows)
        return token

    async def login(call: ApiCall) -> ApiResponse:
        await refuse_forged_opening(call)
        body = call.json()
        email = body.get("email", body.get("username"))
        password = body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email:
            raise InvalidRequest("email (or username) and password are required")
        return pair_answer(await sessions.login(email, password, call.info))

    async def refresh(call: ApiCall) -> ApiResponse:
        if cookies:
            token = await cookie_token(call)
        else:
            token = text_field(call.json(), "refresh_token")
        return pair_answer(await sessions.refresh(token, call.info))

    async def logout(call: ApiCall) -> ApiResponse:
        if call.principal is None:  # by the cookie (router: SESSION)
            await sessions.end_by_cookie(await cookie_token(call), call.info)
        else:
            await sessions.logout(call.caller, call.info)
        if not cookies:
            return ApiResponse(204)
        # Whichever credential said so, the browser's cookie of the ended session goes too.
        return ApiResponse(204, None, {h.SET_COOKIE: clear_cookie()})

    async def me(call: ApiCall) -> ApiResponse:
        caller = call.caller
        assert caller.user_id is not None
        user = await accounts.get(caller.user_id)
        return ApiResponse(200, {"user": user.public(), "session_id": caller.session_id})

    async def status(call: ApiCall) -> ApiResponse:
        return ApiResponse(200, await sessions.status(call.caller))

    async def extend(call: ApiCall) -> ApiResponse:
        return ApiResponse(200, await sessions.extend(call.caller, call.info))

    async def verify_email(call: ApiCall) -> ApiResponse:
        token = text_field(call.json(), "token")
        user = await accounts.verify_email(token, call.info)
        return ApiResponse(200, {"user": user.public()})

    async def resend_verification(call: ApiCall) -> ApiResponse:
        email = call.json().get("email")
        if isinstance(email, str) and email:
            accounts.resend_verification_later(email, call.info, call.base_url)
        # 202 whatever happens, as forgot-password: nothing to learn about who signed up.
        return ApiResponse(202, {"status": "accepted"})

    async def forgot_password(call: ApiCall) -> ApiResponse:
        email = call.json().get("email")
        if isinstance(email, str) and email:
            accounts.forgot_password_later(email, call.info, call.base_url)
        # 202 whatever happens, and before it happens: the answer must not tell who has an
        # account, neither by what it says nor by when it comes.
        return ApiResponse(202, {"status": "accepted"})

    async def reset_password(call: ApiCall) -> ApiResponse:
        body = call.json()
        token = text_field(body, "token")
        password = text_field(body, "password")
        await accounts.reset_password(token, password, call.info)
        return ApiResponse(200, {"status": "password changed"})

    credentials = obj(
        {"email": token("e-mail address (or, as `username`, the same)"), "password": string()},
        ["email", "password"],
    )
    for endpoint in (
        Endpoint(
            "POST",
            "/api/v1/auth/signup",
            signup,
            PUBLIC,
            "Create an account; a verification e-mail is sent. An address that has an "
            "account gets the same answer (a user of the same shape whose id names nobody) "
            "and a mail saying so",
            201,
            obj(
                {"email": EMAIL, "password": PASSWORD, "name": NULLABLE_PERSON_NAME},
                ["email", "password"],
            ),
            obj({"user": USER_SCHEMA}, ["user"]),
            rate=MAIL_RATE,
            errors=((403, LOGIN_CSRF_REFUSAL), NOT_JSON),
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/login",
            login,
            PUBLIC,
            "Log in with e-mail (or username) and password. With GATEWAY_SESSION_COOKIES the "
            f"refresh token is set in the session cookie ({COOKIE_NAME}: "
            "HttpOnly, Secure, SameSite=Strict, Path=/api/v1/auth), never in the body",
            200,
            credentials,
            TOKEN_PAIR,
            rate=LOGIN_RATE,
            errors=(
                (401, "`invalid_credentials`: wrong e-mail or password (the same for both)"),
                (
                    403,
                    "`email_not_verified` (with GATEWAY_REQUIRE_VERIFIED_EMAIL): the password "
                    "is right but the address is not confirmed; POST "
                    "/api/v1/auth/verify-email/resend sends a new mail. " + LOGIN_CSRF_REFUSAL,
                ),
                (
                    429,
                    "`rate_limited`: too many failed logins for this account from this "
                    "address (or in all); Retry-After says when to try again",
                ),
                NOT_JSON,
            ),
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/refresh",
            refresh,
            PUBLIC,
            "Exchange a refresh token for a new pair (the old one is spent; reuse ends the "
            "session). With GATEWAY_SESSION_COOKIES the refresh token is read from the "
            f"session cookie ({COOKIE_NAME}) instead of the body, and the "
            "new one is set in it, never in the body",
            200,
            obj(
                {"refresh_token": token("absent with GATEWAY_SESSION_COOKIES: the cookie has it")},
                [] if cookies else ["refresh_token"],
            ),
            TOKEN_PAIR,
            rate=REFRESH_RATE,
            errors=(
                (401, "`missing_credentials` (GATEWAY_SESSION_COOKIES): no usable cookie"),
                (
                    403,
                    "`email_not_verified` (with GATEWAY_REQUIRE_VERIFIED_EMAIL): the session "
                    "ends; confirm the address, then log in. " + CSRF_REFUSAL[1],
                ),
            ),
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/logout",
            logout,
            SESSION,
            "End the caller's session: its refresh and access tokens stop working now. With "
            "GATEWAY_SESSION_COOKIES the session cookie alone will do (when no Authorization "
            "is sent), and the answer clears the cookie (Max-Age=0). This browser's login-page "
            "session of the same user ends too, and its cookie is cleared",
            204,
            errors=(CSRF_REFUSAL,),
        ),
        Endpoint(
            "GET",
            "/api/v1/auth/me",
            me,
            USER,
            "The caller",
            200,
            None,
            obj({"user": USER_SCHEMA, "session_id": string()}, ["user"]),
        ),
        Endpoint(
            "GET",
            "/api/v1/auth/session/status",
            status,
            USER,
            "The caller's session",
            200,
            None,
            SESSION_STATUS,
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/session/extend",
            extend,
            USER,
            "Push the session's end out; a fresh access token",
            200,
            None,
            OBJECT,
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/verify-email",
            verify_email,
            PUBLIC,
            "Confirm an e-mail address with the token mailed at signup",
            200,
            obj({"token": token()}, ["token"]),
            obj({"user": USER_SCHEMA}, ["user"]),
            errors=((401, "`invalid_token`: the token is unknown, spent or expired"),),
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/verify-email/resend",
            resend_verification,
            PUBLIC,
            "Mail a new verification token if the address has an account still to confirm "
            "(always 202, at once; the mail goes after the answer)",
            202,
            obj(
                {"email": {"description": "only a non-empty string sends a mail; the same answer"}},
                [],
            ),
            OBJECT,
            rate=MAIL_RATE,
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/forgot-password",
            forgot_password,
            PUBLIC,
            "Mail a password-reset token if the account exists (always 202)",
            202,
            obj(
                {"email": {"description": "only a non-empty string sends a mail; the same answer"}},
                [],
            ),
            OBJECT,
            rate=MAIL_RATE,
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/reset-password",
            reset_password,
            PUBLIC,
            "Set a new password with a reset token; every session of the user ends",
            200,
            obj({"token": token(), "password": PASSWORD}, ["token", "password"]),
            OBJECT,
            errors=((401, "`invalid_token`: the token is unknown, spent or expired"),),
        ),
    ):
        api.add(endpoint)
