"""JSON schemas of the API's bodies, for the OpenAPI document."""

from __future__ import annotations

from typing import Any


def string(description: str = "") -> dict[str, Any]:
    return {"type": "string", **({"description": description} if description else {})}


# What auth_core.text refuses in addresses, names, ids and query parameters: C0, DEL, C1,
# U+2028 and U+2029. (A JSON Schema pattern is searched, not matched: hence ^ and $.)
_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029"
PLAIN = f"^[^{_CONTROL}]*$"


def text(description: str = "", *, max_length: int | None = None) -> dict[str, Any]:
    """A non-empty string without control characters, as the server takes names and ids."""
    schema = {**string(description), "minLength": 1, "pattern": PLAIN}
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def token(description: str = "") -> dict[str, Any]:
    """A secret or one-time token: any non-empty string (a wrong one is refused as such)."""
    return {**string(description), "minLength": 1}


def trimmed(description: str = "", *, max_length: int) -> dict[str, Any]:
    """A name the server strips: at least one character that is not white space."""
    return {
        **string(description),
        "maxLength": max_length,
        "pattern": f"^[^{_CONTROL}]*[^\\s{_CONTROL}][^{_CONTROL}]*$",
    }


# auth_core.store.ids.new_id: a prefix, "_" and 20 hex digits.
ID = {"type": "string", "pattern": "^[a-z]+_[0-9a-f]{20}$"}
# auth_core.accounts: EMAIL, MAX_EMAIL and the control characters of auth_core.text.
EMAIL = {
    "type": "string",
    "maxLength": 254,
    "pattern": f"^[^@\\s{_CONTROL}]{{1,64}}@[^@\\s{_CONTROL}]+\\.[^@\\s{_CONTROL}]+$",
}
PASSWORD = {"type": "string", "minLength": 8, "maxLength": 1024, "description": "8-1024 characters"}
PERSON_NAME = text("at most 200 characters", max_length=200)
NULLABLE_PERSON_NAME = {"anyOf": [{"type": "null"}, PERSON_NAME]}
NULLABLE_EMAIL = {"anyOf": [{"type": "null"}, EMAIL]}
ROLES = {"type": "array", "items": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}$"}}
# auth_core.units.parse_duration
DURATION = {
    "type": "string",
    "pattern": "^(?=[^1-9]*[1-9])\\s*[0-9]+(\\.[0-9]+)?\\s*(ms|s|m|h|d)?\\s*$",
}


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
