"""The one exception hierarchy of the request path, and its mapping to problem+json (RFC 9457).

    GatewayError                  every error a client may see; carries status and a stable code
     ├── InvalidRequest           400 invalid_request (malformed path, header, body)
     ├── RouteNotFound            404 route_not_found
     ├── MethodNotAllowed         405 method_not_allowed (with Allow)
     ├── PayloadTooLarge          413 payload_too_large
     ├── ForwardAuthNotAllowed    403 forward_auth_not_allowed
     ├── UpstreamUnavailable      502 upstream_unavailable
     ├── UpstreamTimeout          504 upstream_timeout
     └── AuthUnavailable          503 auth_unavailable

Auth errors (401/403/429) join the same tree; `problem_response` is the only place that turns
an error into bytes, so no stack trace or internal detail can reach a client by another road.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from http import HTTPStatus

from auth_core.errors import AuthError
from gateway.http.response import Response
from gateway.problem import PROBLEM_JSON, SERVER_NAME, problem_body


class ErrorCode(StrEnum):
    """Stable error codes (README: Errors); clients match on these, never on titles."""

    MISSING_CREDENTIALS = "missing_credentials"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - an error code, not a token
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - an error code, not a token
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - an error code, not a token
    INVALID_API_KEY = "invalid_api_key"
    IP_NOT_ALLOWED = "ip_not_allowed"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    INSUFFICIENT_ROLE = "insufficient_role"
    RATE_LIMITED = "rate_limited"
    ROUTE_NOT_FOUND = "route_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INVALID_REQUEST = "invalid_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    AUTH_UNAVAILABLE = "auth_unavailable"
    NOT_FOUND = "not_found"
    INTERNAL_ERROR = "internal_error"
    INVALID_CREDENTIALS = "invalid_credentials"
    CONFLICT = "conflict"
    FORWARD_AUTH_NOT_ALLOWED = "forward_auth_not_allowed"
    LAST_ADMIN = "last_admin"
    EMAIL_NOT_VERIFIED = "email_not_verified"


class GatewayError(Exception):
    """An error answered to the client as problem+json; `detail` must be safe to show."""

    status: int = 500
    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code  # type: ignore[assignment]
        self.detail = detail or HTTPStatus(self.status).description
        self.headers: Mapping[str, str] = headers or {}
        self.audited = False  # an audit entry for this refusal exists already
        super().__init__(self.detail)


class InvalidRequest(GatewayError):
    status = 400
    code = ErrorCode.INVALID_REQUEST


class RouteNotFound(GatewayError):
    status = 404
    code = ErrorCode.ROUTE_NOT_FOUND


class NotFound(GatewayError):
    status = 404
    code = ErrorCode.NOT_FOUND


class MethodNotAllowed(GatewayError):
    status = 405
    code = ErrorCode.METHOD_NOT_ALLOWED

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"{method} is not allowed here; allowed: {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )


class PayloadTooLarge(GatewayError):
    status = 413
    code = ErrorCode.PAYLOAD_TOO_LARGE

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than this route allows ({limit} bytes)")


class Forbidden(GatewayError):
    status = 403
    code = ErrorCode.IP_NOT_ALLOWED


class ForwardAuthNotAllowed(GatewayError):
    """A caller of forwardAuth that is not one of GATEWAY_FORWARD_AUTH_CLIENTS."""

    status = 403
    code = ErrorCode.FORWARD_AUTH_NOT_ALLOWED


class UpstreamUnavailable(GatewayError):
    status = 502
    code = ErrorCode.UPSTREAM_UNAVAILABLE


class UpstreamTimeout(GatewayError):
    status = 504
    code = ErrorCode.UPSTREAM_TIMEOUT


class AuthUnavailable(GatewayError):
    status = 503
    code = ErrorCode.AUTH_UNAVAILABLE


_PROBLEM_HEADERS = [(b"Content-Type", PROBLEM_JSON.encode()), (b"Server", SERVER_NAME.encode())]


def problem_response(error: GatewayError, request_id: str) -> Response:
    """Render `error` as a response; the single exit for every error of the request path."""
    headers = [*_PROBLEM_HEADERS, (b"X-Request-Id", request_id.encode())]
    headers += [(name.encode(), value.encode()) for name, value in error.headers.items()]
    return Response(
        error.status,
        headers,
        problem_body(error.status, error.code, error.detail, request_id),
    )


def from_auth_error(error: AuthError) -> GatewayError:
    """The auth core's error as the gateway answers it; 401s say how to authenticate
    (RFC 6750 section 3)."""
    headers = dict(error.headers)
    if error.status == 401:
        if error.code == "missing_credentials":
            headers["WWW-Authenticate"] = 'Bearer realm="gateway"'
        else:
            headers["WWW-Authenticate"] = (
                f'Bearer realm="gateway", error="{_BEARER_ERRORS.get(error.code, "invalid_token")}"'
            )
    translated = GatewayError(error.detail, status=error.status, code=error.code, headers=headers)
    translated.audited = error.audited
    return translated


_BEARER_ERRORS = {"invalid_credentials": "invalid_request", "invalid_api_key": "invalid_token"}
