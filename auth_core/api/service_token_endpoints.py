"""Service tokens (role `admin`): create, list and revoke the credentials of internal
services (docs/authentication.md, service tokens)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auth_core import headers as h
from auth_core.api.router import ADMIN, ApiCall, ApiResponse, AuthApi, Endpoint
from auth_core.api.schemas import NUMBER, obj, string

if TYPE_CHECKING:
    from auth_core.service import AuthCore

_NULLABLE_NUMBER = {"type": ["number", "null"]}
SERVICE_TOKEN_SCHEMA = obj(
    {
        "id": string(),
        "name": string("unique among live tokens"),
        "prefix": string("the token's first characters, to tell tokens apart"),
        "created_at": NUMBER,
        "last_used_at": _NULLABLE_NUMBER,
        "revoked_at": _NULLABLE_NUMBER,
    },
    ["id", "name", "prefix", "created_at"],
)
PATH = "/api/v1/service-tokens"


def register(api: AuthApi, core: AuthCore) -> None:
    tokens = core.service_tokens

    async def create(call: ApiCall) -> ApiResponse:
        token, secret = await tokens.create(
            call.json().get("name"), actor_id=call.caller.user_id, call=call.info
        )
        return ApiResponse(201, {**token.public(), "token": secret}, {h.CACHE_CONTROL: "no-store"})

    async def list_tokens(call: ApiCall) -> ApiResponse:
        found = await tokens.list()
        return ApiResponse(200, {"service_tokens": [token.public() for token in found]})

    async def revoke(call: ApiCall) -> ApiResponse:
        await tokens.revoke(call.params["token_id"], actor_id=call.caller.user_id, call=call.info)
        return ApiResponse(204)

    created = obj(
        {**SERVICE_TOKEN_SCHEMA["properties"], "token": string("gws_...; shown this once")},
        ["id", "name", "prefix", "created_at", "token"],
    )
    for endpoint in (
        Endpoint(
            "POST",
            PATH,
            create,
            ADMIN,
            "Create a service token (its secret is in the answer, this once)",
            201,
            obj(
                {
                    "name": {
                        **string("letters, digits, '.', '_', '-'; at most 64"),
                        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                    }
                },
                ["name"],
            ),
            created,
            errors=((409, "`conflict`: a live service token has this name"),),
        ),
        Endpoint(
            "GET",
            PATH,
            list_tokens,
            ADMIN,
            "List service tokens, revoked ones included",
            200,
            None,
            obj(
                {"service_tokens": {"type": "array", "items": SERVICE_TOKEN_SCHEMA}},
                ["service_tokens"],
            ),
        ),
        Endpoint(
            "DELETE",
            PATH + "/{token_id}",
            revoke,
            ADMIN,
            "Revoke a service token: refused everywhere at once",
            204,
        ),
    ):
        api.add(endpoint)
