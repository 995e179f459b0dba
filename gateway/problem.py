"""The problem+json document (RFC 9457) every error of the gateway is answered with."""

from __future__ import annotations

import json
from http import HTTPStatus

PROBLEM_JSON = "application/problem+json"
SERVER_NAME = "gateway"  # what the Server header says: no software versions for scanners


def problem_body(
    status: int, code: str, detail: str, request_id: str | None, title: str | None = None
) -> bytes:
    """The problem+json document of the README's Errors section."""
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
