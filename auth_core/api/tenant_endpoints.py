"""Tenants and their API keys (docs/authentication.md): platform admins manage every tenant;
a tenant's admins (role `tenant_admin`) manage their own and nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auth_core import headers as h
from auth_core.api.router import ADMIN, TENANT, ApiCall, ApiResponse, AuthApi, Endpoint
from auth_core.api.schemas import DURATION, NUMBER, STRINGS, USER_SCHEMA, obj, string, trimmed
from auth_core.errors import InvalidRequest
from auth_core.models import ApiKey

if TYPE_CHECKING:
    from auth_core.service import AuthCore

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_NUMBER = {"type": ["number", "null"]}
TENANT_SCHEMA = obj(
    {
        "id": string(),
        "name": string(),
        "origins": STRINGS,
        "ip_whitelist": STRINGS,
        "created_at": NUMBER,
        "updated_at": NUMBER,
    },
    ["id", "name", "origins", "ip_whitelist"],
)
KEY_SCHEMA = obj(
    {
        "id": string(),
        "tenant_id": string(),
        "name": NULLABLE_STRING,
        "prefix": string("the key's first characters, to tell keys apart"),
        "allow_ips": {"type": ["array", "null"], "items": {"type": "string"}},
        "created_at": NUMBER,
        "expires_at": NULLABLE_NUMBER,
        "last_used_at": NULLABLE_NUMBER,
        "revoked_at": NULLABLE_NUMBER,
        "rotated_to": NULLABLE_STRING,
    },
    ["id", "tenant_id", "prefix"],
)
NEW_KEY_SCHEMA = {
    **KEY_SCHEMA,
    "properties": {**KEY_SCHEMA["properties"], "key": string("the secret, shown this once")},
    "required": ["id", "key", "prefix"],
}
EXPIRY = {
    "anyOf": [{"type": "null"}, {"type": "number", "x-future": True}, DURATION],
    "description": 'none (null), Unix seconds in the future, or a duration such as "90d"',
}
TENANT_NAME = trimmed("unique in any case", max_length=200)
# auth_core.tenancy: an origin (https://app.example.com, https://*.example.com), and an
# address or CIDR block (IPv4 or IPv6).
ORIGINS = {"type": "array", "maxItems": 100, "items": {"type": "string", "format": "uri"}}
GRACE = {
    "anyOf": [{"type": "null"}, {"type": "number", "minimum": 0, "maximum": 30 * 86400}, DURATION],
    "description": 'seconds, or a duration such as "24h"; at most 30 days (default 24h)',
}
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = f"({_OCTET}\\.){{3}}{_OCTET}"
_H = "[0-9a-fA-F]{1,4}"
# An IPv6 address in any of RFC 4291's text forms (2.2), as the server writes them back too.
_V6 = "|".join(
    (
        f"({_H}:){{7}}{_H}",
        f"({_H}:){{1,7}}:",
        f"({_H}:){{1,6}}:{_H}",
        f"({_H}:){{1,5}}(:{_H}){{1,2}}",
        f"({_H}:){{1,4}}(:{_H}){{1,3}}",
        f"({_H}:){{1,3}}(:{_H}){{1,4}}",
        f"({_H}:){{1,2}}(:{_H}){{1,5}}",
        f"{_H}:(:{_H}){{1,6}}",
        f":((:{_H}){{1,7}}|:)",
        f"::(ffff(:0{{1,4}})?:)?{_V4}",
        f"({_H}:){{1,4}}:{_V4}",
    )
)
CIDRS = {
    "type": "array",
    "maxItems": 1000,
    "items": {
        "anyOf": [
            {"type": "string", "format": "ipv4"},
            {"type": "string", "format": "ipv6"},
            {"type": "string", "pattern": f"^{_V4}/32$"},
            {"type": "string", "pattern": f"^({_V6})/128$"},
        ],
        "description": "an address, or a CIDR block without host bits (10.0.0.0/8, 2001:db8::/32)",
    },
}


def _with_secret(key: ApiKey, secret: str) -> dict[str, Any]:
    return {**key.public(), "key": secret}


def register(api: AuthApi, core: AuthCore) -> None:
    tenants = core.tenants
    keys = core.keys

    async def create_tenant(call: ApiCall) -> ApiResponse:
        body = call.json()
        if set(body) - {"name", "origins", "ip_whitelist"}:
            raise InvalidRequest("a tenant takes name, origins and ip_whitelist")
        tenant = await tenants.create(
            body.get("name"),
            body.get("origins", []),
            body.get("ip_whitelist", []),
            call.caller.user_id,
            call.info,
        )
        return ApiResponse(201, tenant.public())

    async def list_tenants(call: ApiCall) -> ApiResponse:
        found = await core.store.tenants.list(limit=500)
        return ApiResponse(200, {"tenants": [tenant.public() for tenant in found]})

    async def get_tenant(call: ApiCall) -> ApiResponse:
        return ApiResponse(200, (await tenants.get(call.params["tenant_id"])).public())

    async def update_tenant(call: ApiCall) -> ApiResponse:
        tenant = await tenants.update(
            call.params["tenant_id"], call.json(), call.caller.user_id, call.info
        )
        return ApiResponse(200, tenant.public())

    def replace(field: str) -> Any:
        async def handler(call: ApiCall) -> ApiResponse:
            body = call.json()
            if set(body) != {field}:
                raise InvalidRequest(f"the body is {{{field!r}: [...]}}")
            tenant = await tenants.update(
                call.params["tenant_id"], body, call.caller.user_id, call.info
            )
            return ApiResponse(200, tenant.public())

        return handler

    async def tenant_users(call: ApiCall) -> ApiResponse:
        tenant = await tenants.get(call.params["tenant_id"])
        found = await core.store.users.list(limit=500, tenant_id=tenant.id)
        return ApiResponse(200, {"users": [user.public() for user in found]})

    async def create_key(call: ApiCall) -> ApiResponse:
        body = call.json()
        unknown = set(body) - {"name", "expires_at", "allow_ips"}
        if unknown:
            raise InvalidRequest("a key takes name, expires_at and allow_ips")
        key, secret = await keys.create(
            call.params["tenant_id"],
            name=body.get("name"),
            expires=body.get("expires_at"),
            allow_ips=body.get("allow_ips"),
            actor_id=call.caller.user_id,
            call=call.info,
        )
        return ApiResponse(201, _with_secret(key, secret), {h.CACHE_CONTROL: "no-store"})

    async def list_keys(call: ApiCall) -> ApiResponse:
        tenant = await tenants.get(call.params["tenant_id"])
        found = await core.store.api_keys.of_tenant(tenant.id)
        return ApiResponse(200, {"api_keys": [key.public() for key in found]})

    async def revoke_key(call: ApiCall) -> ApiResponse:
        await keys.revoke(
            call.params["key_id"],
            tenant_id=call.params["tenant_id"],
            actor_id=call.caller.user_id,
            call=call.info,
        )
        return ApiResponse(204)

    async def rotate_key(call: ApiCall) -> ApiResponse:
        body = call.json()
        if set(body) - {"grace"}:
            raise InvalidRequest("rotation takes grace")
        new, secret, old = await keys.rotate(
            call.params["key_id"],
            body.get("grace"),
            tenant_id=call.params["tenant_id"],
            actor_id=call.caller.user_id,
            call=call.info,
        )
        return ApiResponse(
            201,
            {**_with_secret(new, secret), "previous": old.public()},
            {h.CACHE_CONTROL: "no-store"},
        )

    # Tenant names are unique in any case (migration 0004), so the CLI can address one by name.
    NAME_TAKEN = ((409, "`conflict`: another tenant has this name"),)
    tenant_fields = {"name": TENANT_NAME, "origins": ORIGINS, "ip_whitelist": CIDRS}
    tenant_body = {**obj(tenant_fields, ["name"]), "additionalProperties": False}
    base = "/api/v1/tenants/{tenant_id}"
    for endpoint in (
        Endpoint(
            "POST",
            "/api/v1/tenants",
            create_tenant,
            ADMIN,
            "Create a tenant with its origin and IP whitelists",
            201,
            tenant_body,
            TENANT_SCHEMA,
            errors=NAME_TAKEN,
        ),
        Endpoint(
            "GET",
            "/api/v1/tenants",
            list_tenants,
            ADMIN,
            "List tenants",
            200,
            None,
            obj({"tenants": {"type": "array", "items": TENANT_SCHEMA}}, ["tenants"]),
        ),
        Endpoint("GET", base, get_tenant, TENANT, "A tenant", 200, None, TENANT_SCHEMA),
        Endpoint(
            "PATCH",
            base,
            update_tenant,
            TENANT,
            "Change a tenant's name, origins or IP whitelist (in force everywhere at once)",
            200,
            {**obj(tenant_fields, []), "additionalProperties": False},
            TENANT_SCHEMA,
            errors=NAME_TAKEN,
        ),
        Endpoint(
            "PUT",
            base + "/ip-whitelist",
            replace("ip_whitelist"),
            TENANT,
            "Replace the tenant's IP whitelist (CIDR blocks, IPv4 and IPv6)",
            200,
            {**obj({"ip_whitelist": CIDRS}, ["ip_whitelist"]), "additionalProperties": False},
            TENANT_SCHEMA,
        ),
        Endpoint(
            "PUT",
            base + "/origins",
            replace("origins"),
            TENANT,
            "Replace the tenant's origin whitelist",
            200,
            {**obj({"origins": ORIGINS}, ["origins"]), "additionalProperties": False},
            TENANT_SCHEMA,
        ),
        Endpoint(
            "GET",
            base + "/users",
            tenant_users,
            TENANT,
            "The tenant's users",
            200,
            None,
            obj({"users": {"type": "array", "items": USER_SCHEMA}}, ["users"]),
        ),
        Endpoint(
            "POST",
            base + "/api-keys",
            create_key,
            TENANT,
            "Create an API key; the answer holds the secret, shown this once",
            201,
            {
                **obj(
                    {
                        "name": {"anyOf": [{"type": "null"}, TENANT_NAME]},
                        "expires_at": EXPIRY,
                        "allow_ips": {"anyOf": [{"type": "null"}, CIDRS]},
                    },
                    [],
                ),
                "additionalProperties": False,
            },
            NEW_KEY_SCHEMA,
        ),
        Endpoint(
            "GET",
            base + "/api-keys",
            list_keys,
            TENANT,
            "The tenant's API keys (never their secrets)",
            200,
            None,
            obj({"api_keys": {"type": "array", "items": KEY_SCHEMA}}, ["api_keys"]),
        ),
        Endpoint(
            "DELETE",
            base + "/api-keys/{key_id}",
            revoke_key,
            TENANT,
            "Revoke an API key (refused everywhere at once)",
            204,
        ),
        Endpoint(
            "POST",
            base + "/api-keys/{key_id}/rotate",
            rotate_key,
            TENANT,
            "A new key; the old one keeps working for the grace period (default 24h)",
            201,
            {**obj({"grace": GRACE}, []), "additionalProperties": False},
            NEW_KEY_SCHEMA,
            errors=((409, "`conflict`: the key is revoked, expired or rotated already"),),
        ),
    ):
        api.add(endpoint)
