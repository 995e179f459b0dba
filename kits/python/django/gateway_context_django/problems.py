"""problem+json answers (RFC 9457), shaped as the gateway's own refusals are."""

from __future__ import annotations

import json
from http import HTTPStatus

from django.http import HttpResponse

PROBLEM_JSON = "application/problem+json"
INVALID_CONTEXT = "invalid_context"  # no valid context signature
NO_LOCAL_USER = "no_local_user"  # GATEWAY_CONTEXT_LOCAL_USER = "find", and none
WWW_AUTHENTICATE = "WWW-Authenticate"


def challenge(audience: str) -> str:
    """The WWW-Authenticate value of a 401 (RFC 9110 says a 401 carries one)."""
    return f'GatewayContext audience="{audience}"'


def problem_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> HttpResponse:
    body = {
        "type": f"urn:gateway:error:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "error": code,
    }
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
