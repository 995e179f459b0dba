"""The OpenAPI 3 document of every endpoint the auth core serves (`GET /api/v1/openapi.json`),
built from the endpoints themselves so that it cannot drift from them."""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from typing import Any

from auth_core import headers as h
from auth_core.api.openapi_gateway import OPERATIONAL_PATHS, forward_auth, problem
from auth_core.api.router import (
    ADMIN,
    API_KEY,
    PUBLIC,
    SERVICE,
    SESSION,
    TENANT,
    USER_OR_PAT,
    ApiCall,
    ApiResponse,
    AuthApi,
    Endpoint,
)
from auth_core.api.schemas import ID, OBJECT, PLAIN
from auth_core.api.session_cookie import COOKIE_NAME, COOKIE_PATH

_SCHEMES = {API_KEY: "apiKey", SERVICE: "service"}
_ACCESS = {
    ADMIN: "Needs the admin role.",
    TENANT: "Needs the admin role, or the tenant_admin role in this tenant.",
    API_KEY: "An API key of the tenant, from an address its IP whitelists allow.",
    SERVICE: "A service token: Authorization: Service gws_... (gateway service-token create).",
    USER_OR_PAT: "An access token, or a personal access token of the user (Bearer gwp_...).",
    SESSION: "An access token, or with GATEWAY_SESSION_COOKIES the session cookie alone "
    "(X-Requested-With and a whitelisted Origin required: 403 csrf_refused otherwise).",
}
SESSION_COOKIE = {
    "type": "apiKey",
    "in": "cookie",
    "name": COOKIE_NAME,
    "description": "GATEWAY_SESSION_COOKIES only: the refresh token, set by login and refresh "
    f"(HttpOnly; Secure; SameSite=Strict; Path={COOKIE_PATH}), read by refresh and logout, "
    "cleared by logout (Max-Age=0). A request it authenticates that changes state needs "
    "X-Requested-With (any value) and an Origin (or Referer) on the whitelist of the token's "
    "user (the tenant's origins, else the top-level origins of routes.yaml), or it is "
    "refused: 403 csrf_refused. A malformed or repeated cookie counts as absent.",
}
VALIDATE_PATH = "/api/v1/auth/validate"
FORWARD_AUTH_METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")
OPENAPI_PATH = "/api/v1/openapi.json"


# Path parameters other than ids (auth_core.store.ids), and what the server takes for them.
_PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "address": {"anyOf": [{"type": "string", "format": f} for f in ("ipv4", "ipv6")]},
    "connection_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
}
_PLAIN_STRING = {"type": "string", "pattern": PLAIN}


def _refusals(endpoint: Endpoint) -> dict[str, dict[str, Any]]:
    """What any call of `endpoint` may be answered besides its success and its own refusals."""
    refusals = {"400": problem("`invalid_request`: a malformed body or query (docs/api.md)")}
    if endpoint.access != PUBLIC:
        refusals["401"] = problem(
            "`missing_credentials`, `invalid_token`, `token_expired`, `token_revoked`, "
            "`invalid_api_key`: no credential, or not a valid one"
        )
    refusals["403"] = problem(
        "`insufficient_role`, `ip_not_allowed`, `origin_not_allowed`, `csrf_refused`, or the "
        "client address is banned for repeated failed credentials"
    )
    if endpoint.pattern.groupindex:
        refusals["404"] = problem("`not_found`: nothing of this id")
    if endpoint.request is not None:
        refusals["413"] = problem("`payload_too_large`: the body is over 64 KiB")
    refusals["429"] = problem(
        "`rate_limited`: a limit of the route or of this endpoint; Retry-After says when"
    )
    refusals["503"] = problem("`auth_unavailable`: the auth core's database is unavailable")
    return refusals


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    name = f"{endpoint.method.lower()}_{endpoint.path.strip('/')}"
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": re.sub(r"[^a-z0-9]+", "_", name).strip("_"),
        "x-access": endpoint.access,
        "responses": {
            str(endpoint.status): {
                "description": "success",
                **(
                    {"content": {"application/json": {"schema": endpoint.response}}}
                    if endpoint.response is not None
                    else {}
                ),
            },
            **_refusals(endpoint),
        },
    }
    for status, says in endpoint.errors:
        operation["responses"][str(status)] = problem(says)
    if endpoint.access == SESSION:
        operation["security"] = [{"bearer": []}, {"sessionCookie": []}]
    elif endpoint.access != PUBLIC:
        operation["security"] = [{_SCHEMES.get(endpoint.access, "bearer"): []}]
        description = _ACCESS.get(endpoint.access)
        if description:
            operation["description"] = description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _PATH_PARAMETERS.get(name, ID),
        }
        for name in endpoint.pattern.groupindex
    ] + [
        {"name": name, "in": "query", "required": False, "schema": schema or _PLAIN_STRING}
        for name, schema in endpoint.query
    ]
    if parameters:
        operation["parameters"] = parameters
    if endpoint.request is not None:
        # A missing body reads as {}: it is required only where a field is.
        operation["requestBody"] = {
            "required": bool(endpoint.request.get("required") or endpoint.request.get("anyOf")),
            "content": {"application/json": {"schema": endpoint.request}},
        }
    return operation


def _in_the_future(schema: Any, now: int) -> Any:
    """`x-future` (a time that must be to come) as the exclusiveMinimum of this moment."""
    if isinstance(schema, list):
        return [_in_the_future(item, now) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("x-future"):
        return {**{k: v for k, v in schema.items() if k != "x-future"}, "exclusiveMinimum": now}
    return {key: _in_the_future(value, now) for key, value in schema.items()}


def document(
    api: AuthApi, upstreams: Collection[str] = (), public_url: str | None = None
) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {
        # Any method: a proxy's subrequest may keep the method of the request it checks.
        VALIDATE_PATH: {
            method: {**operation, "operationId": f"{method}_api_v1_auth_validate"}
            for method in FORWARD_AUTH_METHODS
            for operation in [forward_auth(upstreams)["get"]]
        },
        **OPERATIONAL_PATHS,
    }
    for endpoint in api.endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gateway auth core",
            "version": "1",
            "description": (
                "Request bodies are JSON objects of at most 64 KiB, nested at most 32 levels, "
                "whose strings hold no NUL and no unpaired surrogate; e-mail addresses, names "
                "(a user's at most 200 characters), external user ids and query parameters "
                "hold no control characters (C0, DEL, C1, U+2028, U+2029). Anything else is "
                "400 invalid_request."
            ),
        },
        # Relative: the gateway that served this document (GATEWAY_PUBLIC_URL when set).
        "servers": [{"url": public_url or "/"}],
        "paths": _in_the_future(dict(sorted(paths.items())), int(time.time())),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": h.X_API_KEY},
                "service": {
                    "type": "http",
                    "scheme": "Service",
                    "description": "a service token, gws_...; never GATEWAY_SERVICE_SECRET",
                },
                "sessionCookie": SESSION_COOKIE,
            }
        },
    }


def register(api: AuthApi) -> None:
    async def openapi(call: ApiCall) -> ApiResponse:
        return ApiResponse(200, document(api, call.upstreams, api.core.settings.public_url or None))

    api.add(Endpoint("GET", OPENAPI_PATH, openapi, PUBLIC, "This document", 200, None, OBJECT))
