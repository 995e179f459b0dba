"""Personal access tokens: a user's own tokens, and the limits that apply to them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auth_core import headers as h
from auth_core.api.auth_endpoints import LOGIN_RATE, REFRESH_RATE
from auth_core.api.router import (
    USER,
    USER_OR_PAT,
    ApiCall,
    ApiResponse,
    AuthApi,
    Endpoint,
    endpoint_limit_key,
)
from auth_core.api.schemas import NUMBER, OBJECT, STRINGS, obj, string
from auth_core.api.tenant_endpoints import EXPIRY, NULLABLE_NUMBER, TENANT_NAME
from auth_core.pats import MAX_PER_USER
from auth_core.sessions import ADDRESS_LIMIT, ADDRESS_WINDOW

if TYPE_CHECKING:
    from auth_core.service import AuthCore

PAT_SCHEMA = obj(
    {
        "id": string(),
        "name": string(),
        "prefix": string("the token's first characters, to tell tokens apart"),
        "scopes": STRINGS,
        "created_at": NUMBER,
        "expires_at": NULLABLE_NUMBER,
        "last_used_at": NULLABLE_NUMBER,
    },
    ["id", "name", "prefix"],
)


def register(api: AuthApi, core: AuthCore) -> None:
    pats = core.pats

    async def create(call: ApiCall) -> ApiResponse:
        caller = call.caller
        assert caller.user_id is not None
        pat, secret = await pats.create(caller.user_id, call.json(), call.info)
        return ApiResponse(201, {**pat.public(), "token": secret}, {h.CACHE_CONTROL: "no-store"})

    async def list_tokens(call: ApiCall) -> ApiResponse:
        assert call.caller.user_id is not None
        found = await pats.list(call.caller.user_id)
        return ApiResponse(200, {"tokens": [pat.public() for pat in found]})

    async def delete(call: ApiCall) -> ApiResponse:
        assert call.caller.user_id is not None
        await pats.delete(call.caller.user_id, call.params["token_id"], call.info)
        return ApiResponse(204)

    async def limits(call: ApiCall) -> ApiResponse:
        """The limits that apply to the caller now, each with what is left of it."""
        assert call.caller.user_id is not None
        held = len(await pats.list(call.caller.user_id))
        address = call.info.ip or "-"
        failures = core.sessions.address_failures
        retry = failures.blocked(address)
        recent = failures.count(address)
        endpoint_limits = []
        for name, path, rate in (
            ("login", "/api/v1/auth/login", LOGIN_RATE),
            ("refresh", "/api/v1/auth/refresh", REFRESH_RATE),
        ):
            left, full_in = await core.limiter.peek(
                endpoint_limit_key("POST", path, "ip:" + address), rate
            )
            endpoint_limits.append(
                {
                    "name": name,
                    "scope": "address",
                    "limit": rate.limit,
                    "window_seconds": rate.per,
                    "remaining": left,
                    "reset": round(full_in, 3),
                }
            )
        return ApiResponse(
            200,
            {
                "limits": [
                    *endpoint_limits,
                    {
                        "name": "personal_access_tokens",
                        "scope": "user",
                        "limit": MAX_PER_USER,
                        "used": held,
                        "remaining": max(0, MAX_PER_USER - held),
                    },
                    {
                        "name": "failed_logins",
                        "scope": "address",
                        "limit": ADDRESS_LIMIT,
                        "window_seconds": ADDRESS_WINDOW,
                        "used": recent,
                        "remaining": max(0, ADDRESS_LIMIT - recent),
                        "retry_after": round(retry, 3),
                    },
                ]
            },
        )

    for endpoint in (
        Endpoint(
            "POST",
            "/api/v1/tokens",
            create,
            USER,
            "Create a personal access token; the answer holds it, shown this once",
            201,
            obj(
                {
                    "name": TENANT_NAME,
                    "expires_at": EXPIRY,
                    "scopes": {
                        "type": ["array", "null"],
                        "maxItems": 32,
                        "items": {"type": "string", "minLength": 1, "maxLength": 64},
                    },
                },
                ["name"],
            ),
            {
                **PAT_SCHEMA,
                "properties": {**PAT_SCHEMA["properties"], "token": string("shown this once")},
            },
        ),
        Endpoint(
            "GET",
            "/api/v1/tokens",
            list_tokens,
            USER,
            "The caller's personal access tokens (never the secrets)",
            200,
            None,
            obj({"tokens": {"type": "array", "items": PAT_SCHEMA}}, ["tokens"]),
        ),
        Endpoint(
            "DELETE",
            "/api/v1/tokens/{token_id}",
            delete,
            USER,
            "Delete one of the caller's tokens (refused everywhere at once)",
            204,
        ),
        Endpoint(
            "GET",
            "/api/v1/tokens/limits",
            limits,
            USER_OR_PAT,
            "The limits that apply to the caller and what is left of each (an access token "
            "or a personal access token of theirs)",
            200,
            None,
            obj({"limits": {"type": "array", "items": OBJECT}}, ["limits"]),
        ),
    ):
        api.add(endpoint)
