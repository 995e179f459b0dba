"""The OpenAPI 3 document of every endpoint the auth core serves (`GET /api/v1/openapi.json`),
built from the endpoints themselves so that it cannot drift from them."""

from __future__ import annotations

import re
from typing import Any

from auth_core import headers as h
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
from auth_core.api.schemas import ERROR, OBJECT
from auth_core.api.session_cookie import COOKIE_NAME, COOKIE_PATH

_PROBLEM = {"application/problem+json": {"schema": ERROR}}
# Served by the gateway itself (it signs context headers), documented here with the rest.
FORWARD_AUTH = {
    "get": {
        "summary": "forwardAuth for Traefik, nginx auth_request and Caddy forward_auth: 200 "
        "with the signed context headers, or 401/403 problem+json",
        "operationId": "get_api_v1_auth_validate",
        "security": [{"bearer": []}, {"apiKey": []}],
        "description": "Only for the proxies of GATEWAY_FORWARD_AUTH_CLIENTS (by TCP peer). "
        "A request with no credential of its own may carry the login page's session cookie "
        "(__Secure-gw_session; X-Auth-Method: cookie).",
        "parameters": [
            {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
            for name in (
                h.X_FORWARDED_METHOD,
                h.X_FORWARDED_URI,
                h.X_FORWARDED_FOR,
                h.X_FORWARDED_PROTO,
                h.X_FORWARDED_HOST,
                h.ORIGIN,
            )
        ]
        + [
            {
                "name": "aud",
                "in": "query",
                "required": False,
                "description": "the upstream of routes.yaml whose key signs (default: the "
                "audience forward_auth)",
                "schema": {"type": "string"},
            },
            {
                "name": "login",
                "in": "query",
                "required": False,
                "description": "redirect: a browser (Accept: text/html) without a credential "
                "or session is answered 303 to the login page, with X-Forwarded-Proto, -Host "
                "and -Uri as its return URL (for Traefik; nginx auth_request takes no 303)",
                "schema": {"type": "string", "enum": ["redirect"]},
            },
        ],
        "responses": {
            "200": {"description": "valid; context headers X-User-Id, X-Gateway-Signature, ..."},
            "303": {"description": "with ?login=redirect: to the login page"},
            "400": {"description": "aud is not an upstream (invalid_request)", "content": _PROBLEM},
            "401": {"description": "no or bad credential", "content": _PROBLEM},
            "403": {
                "description": "credential refused here, or the caller is not a listed proxy "
                "(forward_auth_not_allowed)",
                "content": _PROBLEM,
            },
        },
    }
}
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
OPENAPI_PATH = "/api/v1/openapi.json"


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
            "default": {
                "description": "an error (docs/errors.md)",
                "content": {"application/problem+json": {"schema": ERROR}},
            },
        },
    }
    for status, says in endpoint.errors:
        operation["responses"][str(status)] = {"description": says, "content": _PROBLEM}
    if endpoint.access == SESSION:
        operation["security"] = [{"bearer": []}, {"sessionCookie": []}]
    elif endpoint.access != PUBLIC:
        operation["security"] = [{_SCHEMES.get(endpoint.access, "bearer"): []}]
        description = _ACCESS.get(endpoint.access)
        if description:
            operation["description"] = description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in endpoint.pattern.groupindex
    ] + [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in endpoint.query
    ]
    if parameters:
        operation["parameters"] = parameters
    if endpoint.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": endpoint.request}},
        }
    return operation


def document(api: AuthApi) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {VALIDATE_PATH: FORWARD_AUTH}
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
        "paths": dict(sorted(paths.items())),
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
        return ApiResponse(200, document(api))

    api.add(Endpoint("GET", OPENAPI_PATH, openapi, PUBLIC, "This document", 200, None, OBJECT))
