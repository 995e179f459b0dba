"""The auth core's errors: each carries the HTTP status and the stable code (README: Errors)
that the gateway answers with (it maps them to problem+json in one place)."""

from __future__ import annotations

import math
from collections.abc import Mapping


class AuthError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(
        self, detail: str, *, headers: Mapping[str, str] | None = None, audited: bool = False
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers: Mapping[str, str] = headers or {}
        self.audited = audited  # the auth core wrote its own audit entry for this refusal


class InvalidRequest(AuthError):
    status, code = 400, "invalid_request"


class MissingCredentials(AuthError):
    status, code = 401, "missing_credentials"


class InvalidToken(AuthError):
    status, code = 401, "invalid_token"


class TokenExpired(AuthError):
    status, code = 401, "token_expired"


class TokenRevoked(AuthError):
    status, code = 401, "token_revoked"


class InvalidApiKey(AuthError):
    status, code = 401, "invalid_api_key"


class IpNotAllowed(AuthError):
    status, code = 403, "ip_not_allowed"


class InvalidCredentials(AuthError):
    """Login refused: wrong password, unknown account or locked account, said the same way."""

    status, code = 401, "invalid_credentials"


class InsufficientRole(AuthError):
    status, code = 403, "insufficient_role"


class OriginNotAllowed(AuthError):
    status, code = 403, "origin_not_allowed"


class NotFound(AuthError):
    status, code = 404, "not_found"


class Conflict(AuthError):
    status, code = 409, "conflict"


class LastAdmin(Conflict):
    """The change would leave no enabled user with the admin role."""

    status, code = 409, "last_admin"


class EmailNotVerified(AuthError):
    """Login refused while GATEWAY_REQUIRE_VERIFIED_EMAIL is on and the address is unconfirmed."""

    status, code = 403, "email_not_verified"


class RateLimited(AuthError):
    status, code = 429, "rate_limited"

    def __init__(
        self,
        detail: str,
        retry_after: float,
        *,
        limit: int | None = None,
        policy: str | None = None,
        audited: bool = False,
    ) -> None:
        seconds = str(max(1, math.ceil(retry_after)))
        headers = {"Retry-After": seconds}
        if limit is not None:
            headers.update(
                {
                    "RateLimit-Limit": str(limit),
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": seconds,
                }
            )
        if policy is not None:
            headers["RateLimit-Policy"] = policy
        super().__init__(detail, headers=headers, audited=audited)


class AuthUnavailable(AuthError):
    status, code = 503, "auth_unavailable"


BY_TOKEN_CODE: Mapping[str, type[AuthError]] = {
    "invalid_token": InvalidToken,
    "token_expired": TokenExpired,
    "token_revoked": TokenRevoked,
}
