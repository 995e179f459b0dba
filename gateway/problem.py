"""The problem+json document (RFC 9457) every error of the gateway is answered with, and the one
place that maps an error of the tree (auth_core/errors.py) to it: status, headers and body.

It returns the parts, not a Response: gateway/http renders its own refusals with
`problem_body` and must not be imported back (no import circle).
"""

from __future__ import annotations

import json
from http import HTTPStatus

from auth_core import headers as h
from auth_core.errors import GatewayError

PROBLEM_JSON = "application/problem+json"
SERVER_NAME = "gateway"  # what the Server header says: no software versions for scanners

_PROBLEM_HEADERS = [(h.W_CONTENT_TYPE, PROBLEM_JSON.encode()), (h.W_SERVER, SERVER_NAME.encode())]


def problem_parts(
    error: GatewayError, request_id: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The status, headers and body `error` is answered with: the single exit of every error
    of the request path, so no stack trace or internal detail reaches a client by another
    road."""
    headers = [*_PROBLEM_HEADERS, (h.W_X_REQUEST_ID, request_id.encode())]
    headers += [(name.encode(), value.encode()) for name, value in error.headers.items()]
    return error.status, headers, problem_body(error.status, error.code, error.detail, request_id)


def problem_body(
    status: int, code: str, detail: str, request_id: str | None, title: str | None = None
) -> bytes:
    """The problem+json document of docs/errors.md."""
    phrase = title or _phrase(status)
    return json.dumps(
        {
            "type": f"urn:gateway:error:{code}",
            "title": phrase,
            "status": status,
            "detail": detail,
            "error": code,
            "request_id": request_id,
        },
        separators=(",", ":"),
    ).encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
