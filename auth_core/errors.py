"""The one error tree of the gateway and its auth core (docs/errors.md).

Every error a client may see is a `GatewayError`: it carries the HTTP status, a code from
`ErrorCode` (the stable `error` of the problem+json body), a detail safe to show, and the
headers the answer needs (WWW-Authenticate, Retry-After, Allow ...). The auth core and the
gateway's stages raise these typed errors; gateway/problem.py is the one place that turns one
into a problem+json response. The tree lives here, not in the gateway, because the auth core
never imports the gateway; gateway/errors.py re-exports it.

    GatewayError                  500 internal_error
     ├── InvalidRequest           400 invalid_request (malformed path, header, body, JSON)
     ├── Unauthorized             401: says how to authenticate (WWW-Authenticate)
     │    ├── MissingCredentials  401 missing_credentials
     │    ├── InvalidToken        401 invalid_token
     │    ├── TokenExpired        401 token_expired
     │    ├── TokenRevoked        401 token_revoked
     │    ├── InvalidApiKey       401 invalid_api_key
     │    └── InvalidCredentials  401 invalid_credentials (login refused)
     ├── IpNotAllowed             403 ip_not_allowed
     ├── OriginNotAllowed         403 origin_not_allowed
     ├── InsufficientRole         403 insufficient_role
     ├── EmailNotVerified         403 email_not_verified
     ├── ForwardAuthNotAllowed    403 forward_auth_not_allowed
     ├── CsrfRefused              403 csrf_refused (a cookie-authenticated cross-site write)
     ├── NotFound                 404 not_found
     ├── RouteNotFound            404 route_not_found
     ├── MethodNotAllowed         405 method_not_allowed (with Allow)
     ├── Conflict                 409 conflict
     │    └── LastAdmin           409 last_admin
     ├── PayloadTooLarge          413 payload_too_large
     ├── RateLimited              429 rate_limited (with Retry-After)
     ├── UpstreamUnavailable      502 upstream_unavailable
     ├── AuthUnavailable          503 auth_unavailable
     └── UpstreamTimeout          504 upstream_timeout

tests/auth_core/test_errors.py holds this drawing against the classes below.

`SettingsError` is not in the tree: it stops start-up (a bad environment variable or a bad
routes.yaml) and never reaches a client.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from http import HTTPStatus
from typing import ClassVar

from auth_core import headers as h


class ErrorCode(StrEnum):
    """Stable error codes (docs/errors.md); clients match on these, never on titles."""

    MISSING_CREDENTIALS = "missing_credentials"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - an error code, not a token
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - an error code, not a token
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - an error code, not a token
    INVALID_API_KEY = "invalid_api_key"
    INVALID_CREDENTIALS = "invalid_credentials"
    IP_NOT_ALLOWED = "ip_not_allowed"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    INSUFFICIENT_ROLE = "insufficient_role"
    EMAIL_NOT_VERIFIED = "email_not_verified"
    FORWARD_AUTH_NOT_ALLOWED = "forward_auth_not_allowed"
    CSRF_REFUSED = "csrf_refused"
    RATE_LIMITED = "rate_limited"
    NOT_FOUND = "not_found"
    ROUTE_NOT_FOUND = "route_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    LAST_ADMIN = "last_admin"
    INVALID_REQUEST = "invalid_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    AUTH_UNAVAILABLE = "auth_unavailable"
    INTERNAL_ERROR = "internal_error"


class GatewayError(Exception):
    """An error answered to the client as problem+json; `detail` must be safe to show.

    STATUS and CODE are the class's; `status` and `code` the instance's (a body that stopped
    arriving is InvalidRequest answered 408). ClassVars, said so: compiled with mypyc, a plain
    class attribute of an Exception subclass is lost (see UpstreamError.kind)."""

    STATUS: ClassVar[int] = 500
    CODE: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        audited: bool = False,
    ) -> None:
        self.status: int = status or self.STATUS
        self.code: ErrorCode = self.CODE
        self.detail: str = detail or HTTPStatus(self.status).description
        self.headers: Mapping[str, str] = headers or {}
        self.audited = audited  # an audit entry for this refusal exists already
        super().__init__(self.detail)


class InvalidRequest(GatewayError):
    STATUS, CODE = 400, ErrorCode.INVALID_REQUEST


class Unauthorized(GatewayError):
    """A 401: the answer says how to authenticate (RFC 6750 section 3)."""

    STATUS = 401
    # The RFC 6750 error each code is announced as; a missing credential names none.
    BEARER_ERROR: ClassVar[str | None] = "invalid_token"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        audited: bool = False,
    ) -> None:
        challenge = 'Bearer realm="gateway"'
        if self.BEARER_ERROR is not None:
            challenge += f', error="{self.BEARER_ERROR}"'
        super().__init__(
            detail, headers={**(headers or {}), h.WWW_AUTHENTICATE: challenge}, audited=audited
        )


class MissingCredentials(Unauthorized):
    CODE, BEARER_ERROR = ErrorCode.MISSING_CREDENTIALS, None


class InvalidToken(Unauthorized):
    CODE = ErrorCode.INVALID_TOKEN


class TokenExpired(Unauthorized):
    CODE = ErrorCode.TOKEN_EXPIRED


class TokenRevoked(Unauthorized):
    CODE = ErrorCode.TOKEN_REVOKED


class InvalidApiKey(Unauthorized):
    CODE = ErrorCode.INVALID_API_KEY


class InvalidCredentials(Unauthorized):
    """Login refused: wrong password, unknown account or locked account, said the same way."""

    CODE, BEARER_ERROR = ErrorCode.INVALID_CREDENTIALS, "invalid_request"


class IpNotAllowed(GatewayError):
    STATUS, CODE = 403, ErrorCode.IP_NOT_ALLOWED


class OriginNotAllowed(GatewayError):
    STATUS, CODE = 403, ErrorCode.ORIGIN_NOT_ALLOWED


class InsufficientRole(GatewayError):
    STATUS, CODE = 403, ErrorCode.INSUFFICIENT_ROLE


class EmailNotVerified(GatewayError):
    """Login refused while GATEWAY_REQUIRE_VERIFIED_EMAIL is on and the address is unconfirmed."""

    STATUS, CODE = 403, ErrorCode.EMAIL_NOT_VERIFIED


class ForwardAuthNotAllowed(GatewayError):
    """A caller of forwardAuth that is not one of GATEWAY_FORWARD_AUTH_CLIENTS."""

    STATUS, CODE = 403, ErrorCode.FORWARD_AUTH_NOT_ALLOWED


class CsrfRefused(GatewayError):
    """A state-changing request authenticated by a cookie, without the proof that a page on
    a whitelisted origin sent it (auth_core/csrf.py)."""

    STATUS, CODE = 403, ErrorCode.CSRF_REFUSED


class NotFound(GatewayError):
    STATUS, CODE = 404, ErrorCode.NOT_FOUND


class RouteNotFound(GatewayError):
    STATUS, CODE = 404, ErrorCode.ROUTE_NOT_FOUND


class MethodNotAllowed(GatewayError):
    STATUS, CODE = 405, ErrorCode.METHOD_NOT_ALLOWED

    def __init__(self, method: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"{method} is not allowed here; allowed: {', '.join(allowed)}",
            headers={h.ALLOW: ", ".join(allowed)},
        )


class Conflict(GatewayError):
    STATUS, CODE = 409, ErrorCode.CONFLICT


class LastAdmin(Conflict):
    """The change would leave no enabled user with the admin role."""

    CODE = ErrorCode.LAST_ADMIN


class PayloadTooLarge(GatewayError):
    STATUS, CODE = 413, ErrorCode.PAYLOAD_TOO_LARGE

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than this route allows ({limit} bytes)")


class RateLimited(GatewayError):
    """429 with Retry-After in whole seconds (at least 1), and the RateLimit-* fields when the
    refusal comes from a named limit."""

    STATUS, CODE = 429, ErrorCode.RATE_LIMITED

    def __init__(
        self,
        detail: str,
        retry_after: float,
        *,
        limit: int | None = None,
        policy: str | None = None,
        headers: Mapping[str, str] | None = None,
        audited: bool = False,
    ) -> None:
        seconds = str(max(1, math.ceil(retry_after)))
        fields = {h.RETRY_AFTER: seconds}
        if limit is not None:
            fields.update(
                {
                    h.RATELIMIT_LIMIT: str(limit),
                    h.RATELIMIT_REMAINING: "0",
                    h.RATELIMIT_RESET: seconds,
                }
            )
        if policy is not None:
            fields[h.RATELIMIT_POLICY] = policy
        super().__init__(detail, headers={**fields, **(headers or {})}, audited=audited)


class UpstreamUnavailable(GatewayError):
    STATUS, CODE = 502, ErrorCode.UPSTREAM_UNAVAILABLE


class AuthUnavailable(GatewayError):
    STATUS, CODE = 503, ErrorCode.AUTH_UNAVAILABLE


class UpstreamTimeout(GatewayError):
    STATUS, CODE = 504, ErrorCode.UPSTREAM_TIMEOUT


class SettingsError(ValueError):
    """A setting (an environment variable, or routes.yaml) has a bad value; start-up stops.

    str() names it: `NAME: reason` for a variable, `file:line: reason` for routes.yaml (then
    `source`, `line` and `reason` say the same in parts)."""

    def __init__(self, message: str, *, source: str = "", line: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.line = line
        self.reason = reason or message

    @classmethod
    def at(cls, source: str, line: int, reason: str) -> SettingsError:
        """The error of a file's line: `file:line: reason`."""
        return cls(f"{source}:{line}: {reason}", source=source, line=line, reason=reason)


# The refusal of a token by the code auth_core/tokens.py found.
BY_TOKEN_CODE: Mapping[ErrorCode, type[GatewayError]] = {
    ErrorCode.INVALID_TOKEN: InvalidToken,
    ErrorCode.TOKEN_EXPIRED: TokenExpired,
    ErrorCode.TOKEN_REVOKED: TokenRevoked,
}
