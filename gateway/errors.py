"""The error tree of the request path, re-exported from auth_core/errors.py (drawn there), and
`problem_response`, which answers one of them as problem+json (gateway/problem.py)."""

from __future__ import annotations

from auth_core.errors import (
    AuthUnavailable,
    ErrorCode,
    ForwardAuthNotAllowed,
    GatewayError,
    InsufficientRole,
    InvalidRequest,
    IpNotAllowed,
    MethodNotAllowed,
    NotFound,
    OriginNotAllowed,
    PayloadTooLarge,
    RateLimited,
    RouteNotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.http.response import Response
from gateway.problem import problem_parts

__all__ = [
    "AuthUnavailable",
    "ErrorCode",
    "ForwardAuthNotAllowed",
    "GatewayError",
    "InsufficientRole",
    "InvalidRequest",
    "IpNotAllowed",
    "MethodNotAllowed",
    "NotFound",
    "OriginNotAllowed",
    "PayloadTooLarge",
    "RateLimited",
    "RouteNotFound",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "problem_response",
]


def problem_response(error: GatewayError, request_id: str) -> Response:
    """`error` as a response (its parts from gateway/problem.py)."""
    return Response(*problem_parts(error, request_id))
