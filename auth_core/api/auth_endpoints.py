"""End users' endpoints: signup, login, refresh, logout, me, session, e-mail and password flows
(README: The auth core)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auth_core.api.router import PUBLIC, USER, ApiCall, ApiResponse, AuthApi, Endpoint
from auth_core.api.schemas import OBJECT, SESSION_STATUS, TOKEN_PAIR, USER_SCHEMA, obj, string
from auth_core.errors import InvalidRequest
from auth_core.limits import Rate

if TYPE_CHECKING:
    from auth_core.service import AuthCore


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


def register(api: AuthApi, core: AuthCore) -> None:
    sessions = core.sessions
    accounts = core.accounts

    async def signup(call: ApiCall) -> ApiResponse:
        body = call.json()
        email = text_field(body, "email")
        password = text_field(body, "password")
        name = optional_text(body, "name")
        user = await accounts.signup(email, password, name, call.info, call.base_url)
        return ApiResponse(201, {"user": user.public()})

    async def login(call: ApiCall) -> ApiResponse:
        body = call.json()
        email = body.get("email", body.get("username"))
        password = body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email:
            raise InvalidRequest("email (or username) and password are required")
        pair = await sessions.login(email, password, call.info)
        return ApiResponse(200, pair.body(), {"Cache-Control": "no-store"})

    async def refresh(call: ApiCall) -> ApiResponse:
        token = text_field(call.json(), "refresh_token")
        pair = await sessions.refresh(token, call.info)
        return ApiResponse(200, pair.body(), {"Cache-Control": "no-store"})

    async def logout(call: ApiCall) -> ApiResponse:
        await sessions.logout(call.caller, call.info)
        return ApiResponse(204)

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
        {"email": string("e-mail address"), "password": string("the password")},
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
                {"email": string(), "password": string("8-1024 characters"), "name": string()},
                ["email", "password"],
            ),
            obj({"user": USER_SCHEMA}, ["user"]),
            rate=MAIL_RATE,
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/login",
            login,
            PUBLIC,
            "Log in with e-mail (or username) and password",
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
                    "/api/v1/auth/verify-email/resend sends a new mail",
                ),
                (
                    429,
                    "`rate_limited`: too many failed logins for this account from this "
                    "address (or in all); Retry-After says when to try again",
                ),
            ),
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/refresh",
            refresh,
            PUBLIC,
            "Exchange a refresh token for a new pair (the old one is spent; reuse ends the "
            "session)",
            200,
            obj({"refresh_token": string()}, ["refresh_token"]),
            TOKEN_PAIR,
            rate=REFRESH_RATE,
            errors=(
                (
                    403,
                    "`email_not_verified` (with GATEWAY_REQUIRE_VERIFIED_EMAIL): the session "
                    "ends; confirm the address, then log in",
                ),
            ),
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/logout",
            logout,
            USER,
            "End the caller's session: its refresh and access tokens stop working now; this "
            "browser's login-page session of the same user ends too, and its cookie is cleared",
            204,
            obj({"refresh_token": string()}, []),
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
            obj({"token": string()}, ["token"]),
            obj({"user": USER_SCHEMA}, ["user"]),
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/verify-email/resend",
            resend_verification,
            PUBLIC,
            "Mail a new verification token if the address has an account still to confirm "
            "(always 202, at once; the mail goes after the answer)",
            202,
            obj({"email": string()}, ["email"]),
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
            obj({"email": string()}, ["email"]),
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
            obj({"token": string(), "password": string()}, ["token", "password"]),
            OBJECT,
        ),
    ):
        api.add(endpoint)
