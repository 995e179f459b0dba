"""JSON schemas of the API's bodies, for the OpenAPI document."""

from __future__ import annotations

from typing import Any


def string(description: str = "") -> dict[str, Any]:
    return {"type": "string", **({"description": description} if description else {})}


def obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


OBJECT: dict[str, Any] = {"type": "object"}
NUMBER: dict[str, Any] = {"type": "number"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

USER_SCHEMA = obj(
    {
        "id": string(),
        "email": string(),
        "name": {"type": ["string", "null"]},
        "roles": STRINGS,
        "tenant_id": {"type": ["string", "null"]},
        "email_verified": BOOLEAN,
        "disabled": BOOLEAN,
        "created_at": NUMBER,
    },
    ["id", "email", "roles"],
)

TOKEN_PAIR = obj(
    {
        "access_token": string("JWT, HS256, valid for GATEWAY_ACCESS_TOKEN_TTL"),
        "refresh_token": string(
            "opaque; spent on use. Absent with GATEWAY_SESSION_COOKIES: the session cookie holds it"
        ),
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer"},
        "session_id": string(),
        "user": USER_SCHEMA,
    },
    ["access_token", "token_type", "expires_in", "user"],
)

SESSION_STATUS = obj(
    {
        "active": BOOLEAN,
        "session_id": string(),
        "user_id": string(),
        "created_at": NUMBER,
        "expires_at": NUMBER,
        "access_token_expires_at": NUMBER,
    },
    ["active", "session_id", "user_id", "expires_at"],
)

ERROR = obj(
    {
        "type": string(),
        "title": string(),
        "status": {"type": "integer"},
        "detail": string(),
        "error": string("stable code, e.g. invalid_token"),
        "request_id": string(),
    },
    ["type", "title", "status", "detail", "error", "request_id"],
)
