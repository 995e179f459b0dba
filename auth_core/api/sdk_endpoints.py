"""SDK backends (API key + IP whitelist) and internal services (service token):
`/v1/sdk/*` and `/api/v1/auth/internal/*`."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from auth_core import headers as h
from auth_core.api.auth_endpoints import text_field
from auth_core.api.router import API_KEY, SERVICE, ApiCall, ApiResponse, AuthApi, Endpoint
from auth_core.api.schemas import (
    BOOLEAN,
    EMAIL,
    OBJECT,
    PERSON_NAME,
    ROLES,
    TOKEN_PAIR,
    obj,
    string,
    token,
    trimmed,
)
from auth_core.errors import GatewayError, InvalidRequest, NotFound
from auth_core.limits import Rate
from auth_core.models import Principal
from auth_core.sdk import MAX_EXTERNAL_ID
from auth_core.service import CallInfo

if TYPE_CHECKING:
    from auth_core.service import AuthCore


# Default limits per API key (a tenant's backend opens sessions for all its users).
SDK_SESSION_RATE = Rate(600, 60.0)
SDK_REFRESH_RATE = Rate(1200, 60.0)


def context_of(principal: Principal) -> dict[str, Any]:
    """What an internal caller learns of a valid credential (the context headers' content)."""
    return {
        "auth_method": principal.method,
        "user_id": principal.user_id,
        "email": principal.email or None,
        "email_verified": principal.email_verified if principal.email else None,
        "roles": list(principal.roles),
        "tenant_id": principal.tenant_id,
        "session_id": principal.session_id,
        "credential_id": principal.credential_id,
        "expires_at": principal.expires_at or None,
    }


async def _settle(found: Principal | Awaitable[Principal]) -> Principal:
    return found if isinstance(found, Principal) else await found


NULLABLE_IP = {
    "type": ["string", "null"],
    "description": "the address the key is used from, for its IP whitelists",
}


def register(api: AuthApi, core: AuthCore) -> None:
    sdk = core.sdk
    sessions = core.sessions

    def tenant(call: ApiCall) -> str:
        tenant_id = call.caller.tenant_id
        assert tenant_id is not None, "an API key always has a tenant"
        return tenant_id

    async def open_session(call: ApiCall) -> ApiResponse:
        pair = await sdk.open(tenant(call), call.caller.credential_id, call.json(), call.info)
        return ApiResponse(200, pair.body(), {h.CACHE_CONTROL: "no-store"})

    async def refresh(call: ApiCall) -> ApiResponse:
        token = text_field(call.json(), "refresh_token")
        pair = await sessions.refresh(token, call.info, tenant_id=tenant(call))
        return ApiResponse(200, pair.body(), {h.CACHE_CONTROL: "no-store"})

    async def logout(call: ApiCall) -> ApiResponse:
        """End one session (by its refresh token) or every session of one end user."""
        body = call.json()
        tenant_id = tenant(call)
        if "refresh_token" in body:
            await sessions.end_by_refresh_token(
                text_field(body, "refresh_token"), tenant_id, call.info
            )
        elif "external_user_id" in body:
            external = body["external_user_id"]
            if not isinstance(external, str | int) or isinstance(external, bool):
                raise InvalidRequest("external_user_id must be a string")
            user = await core.store.users.by_external_id(tenant_id, str(external))
            if user is not None:
                await sessions.revoke_user(user.id, "logout by the tenant's backend")
                await core.audit("logout", "success", call.info, user_id=user.id, everywhere=True)
        else:
            raise InvalidRequest("give refresh_token or external_user_id")
        return ApiResponse(204)

    async def validate(call: ApiCall) -> ApiResponse:
        body = call.json()
        ip = body.get("ip")
        if ip is not None and not isinstance(ip, str):
            raise InvalidRequest("ip must be a string")
        # A malformed call is 400; only a credential is answered with a verdict.
        api_key = text_field(body, "api_key") if "api_key" in body else None
        token = text_field(body, "token") if api_key is None or "token" in body else ""
        try:
            if api_key is not None:
                principal = await _settle(
                    core.keys.authenticate(api_key, ip, _as_from(call.info, ip))
                )
            else:
                principal = await _validate_token(core, token, call.info)
        except GatewayError as exc:
            if exc.status >= 500:
                raise
            return ApiResponse(200, {"valid": False, "error": exc.code, "detail": exc.detail})
        return ApiResponse(200, {"valid": True, "context": context_of(principal)})

    async def validate_api_key(call: ApiCall) -> ApiResponse:
        body = call.json()
        if "api_key" not in body:
            raise InvalidRequest("api_key is required")
        return await validate(call)

    async def socket_context(call: ApiCall) -> ApiResponse:
        context = await core.sockets.get(call.params["connection_id"])
        if context is None:
            raise NotFound("no such websocket is open")
        core.stats.socket_context_hits += 1
        return ApiResponse(200, {"context": context})

    answer = obj(
        {"valid": BOOLEAN, "context": OBJECT, "error": string("why not, when not valid")},
        ["valid"],
    )
    for endpoint in (
        Endpoint(
            "POST",
            "/v1/sdk/session",
            open_session,
            API_KEY,
            "Open a session for the tenant's end user (found or created by external_user_id)",
            200,
            obj(
                {
                    "external_user_id": {
                        "anyOf": [{"type": "integer"}, trimmed(max_length=MAX_EXTERNAL_ID)]
                    },
                    "email": {"anyOf": [{"type": "null"}, EMAIL]},
                    "name": {"anyOf": [{"type": "null"}, {**PERSON_NAME, "minLength": 0}]},
                    "roles": {
                        **ROLES,
                        "not": {"contains": {"enum": ["admin", "tenant_admin"]}},
                        "description": "never admin nor tenant_admin",
                    },
                },
                ["external_user_id"],
            ),
            TOKEN_PAIR,
            rate=SDK_SESSION_RATE,
        ),
        Endpoint(
            "POST",
            "/v1/sdk/refresh",
            refresh,
            API_KEY,
            "Rotate an end user's refresh token (of this tenant's users only)",
            200,
            obj({"refresh_token": token()}, ["refresh_token"]),
            TOKEN_PAIR,
            rate=SDK_REFRESH_RATE,
        ),
        Endpoint(
            "POST",
            "/v1/sdk/logout",
            logout,
            API_KEY,
            "End an end user's session (refresh_token) or all their sessions (external_user_id)",
            204,
            {
                **obj(
                    {
                        "refresh_token": token("ends this session"),
                        "external_user_id": {
                            "description": "without refresh_token: ends every session of "
                            "this end user (a string or an integer)"
                        },
                    },
                    [],
                ),
                "anyOf": [
                    {"required": ["refresh_token"]},
                    {
                        "required": ["external_user_id"],
                        "properties": {"external_user_id": {"type": ["string", "integer"]}},
                    },
                ],
            },
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/internal/validate",
            validate,
            SERVICE,
            "Validate an access token, PAT or API key for an internal service",
            200,
            {
                **obj({"token": token(), "api_key": token(), "ip": NULLABLE_IP}, []),
                "anyOf": [{"required": ["token"]}, {"required": ["api_key"]}],
            },
            answer,
        ),
        Endpoint(
            "POST",
            "/api/v1/auth/internal/validate-api-key",
            validate_api_key,
            SERVICE,
            "Validate an API key (and, given ip, the IP whitelists) for an internal service",
            200,
            obj({"api_key": token(), "ip": NULLABLE_IP}, ["api_key"]),
            answer,
        ),
        Endpoint(
            "GET",
            "/api/v1/auth/internal/sockets/{connection_id}",
            socket_context,
            SERVICE,
            "The context of an open websocket (X-Connection-Id of its 101)",
            200,
            None,
            obj({"context": OBJECT}, ["context"]),
        ),
    ):
        api.add(endpoint)


def _as_from(info: CallInfo, ip: str | None) -> CallInfo:
    """The call as the internal caller describes it: refusals are audited with the end
    client's address."""
    return CallInfo(ip=ip, user_agent=info.user_agent, request_id=info.request_id)


async def _validate_token(core: AuthCore, token: str, info: CallInfo) -> Principal:
    if token.startswith("gwp_"):
        return await _settle(core.pats.authenticate(token, info))
    if token.startswith("gwk_"):
        return await _settle(core.keys.authenticate(token, None, info))
    return core.authenticate_access_token(token)
