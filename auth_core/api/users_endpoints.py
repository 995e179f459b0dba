"""Administration (role `admin`): users, their sessions, and the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auth_core.accounts import valid_roles
from auth_core.api.auth_endpoints import optional_text, text_field
from auth_core.api.router import ADMIN, ApiCall, ApiResponse, AuthApi, Endpoint
from auth_core.api.schemas import (
    EMAIL,
    OBJECT,
    PASSWORD,
    PERSON_NAME,
    ROLES,
    USER_SCHEMA,
    obj,
)
from auth_core.errors import InvalidRequest, NotFound
from auth_core.iplists import normalise_ip

if TYPE_CHECKING:
    from auth_core.service import AuthCore

MAX_PAGE = 500


def _whole_number(raw: str) -> bool:
    # ASCII only: str.isdigit() is also true of "²" (which int() refuses) and of other
    # scripts' digits; 18 digits keep clear of int()'s limit on long strings.
    return raw.isascii() and raw.isdigit() and len(raw) <= 18


def _int(call: ApiCall, name: str, default: int, maximum: int) -> int:
    raw = call.query.get(name)
    if raw is None:
        return default
    if not _whole_number(raw) or not 0 <= int(raw) <= maximum:
        raise InvalidRequest(f"{name} must be a whole number from 0 to {maximum}")
    return int(raw)


def register(api: AuthApi, core: AuthCore) -> None:
    accounts = core.accounts

    async def list_users(call: ApiCall) -> ApiResponse:
        limit = _int(call, "limit", 50, MAX_PAGE)
        offset = _int(call, "offset", 0, 10**9)
        users = await core.store.users.list(limit=limit, offset=offset)
        return ApiResponse(200, {"users": [user.public() for user in users]})

    async def create_user(call: ApiCall) -> ApiResponse:
        body = call.json()
        email = text_field(body, "email")
        password = optional_text(body, "password")
        name = optional_text(body, "name")
        roles = valid_roles(body.get("roles", ["user"]))
        verified = body.get("email_verified", False)
        if not isinstance(verified, bool):
            raise InvalidRequest("email_verified must be true or false")
        user = await accounts.create(email, password, name=name, roles=roles, verified=verified)
        await core.audit(
            "user_create", "success", call.info, user_id=user.id, actor_id=call.caller.user_id
        )
        return ApiResponse(201, {"user": user.public()})

    async def get_user(call: ApiCall) -> ApiResponse:
        return ApiResponse(200, {"user": (await accounts.get(call.params["user_id"])).public()})

    async def update_user(call: ApiCall) -> ApiResponse:
        user = await accounts.update(
            call.params["user_id"], call.json(), call.caller.user_id, call.info
        )
        return ApiResponse(200, {"user": user.public()})

    async def delete_user(call: ApiCall) -> ApiResponse:
        await accounts.delete(call.params["user_id"], call.caller.user_id, call.info)
        return ApiResponse(204)

    async def revoke_sessions(call: ApiCall) -> ApiResponse:
        user_id = call.params["user_id"]
        await accounts.get(user_id)
        ended = await core.sessions.revoke_user(user_id, "revoked by an admin")
        await core.audit(
            "sessions_revoke",
            "success",
            call.info,
            user_id=user_id,
            actor_id=call.caller.user_id,
            sessions_ended=len(ended),
        )
        return ApiResponse(200, {"sessions_ended": len(ended)})

    async def audit(call: ApiCall) -> ApiResponse:
        limit = _int(call, "limit", 100, MAX_PAGE)
        before = call.query.get("before")
        if before is not None and not _whole_number(before):
            raise InvalidRequest("before must be an entry id")
        # Refusals are audited off the request's path: an admin who was just refused (or who
        # reads right after a failed login) sees that entry too.
        await core.settle()
        entries = await core.store.audit.list(
            limit=limit,
            before=int(before) if before is not None else None,
            user_id=call.query.get("user_id"),
            event=call.query.get("event"),
        )
        return ApiResponse(200, {"entries": entries})

    async def list_bans(call: ApiCall) -> ApiResponse:
        return ApiResponse(200, {"bans": await core.bans.active()})

    async def lift_ban(call: ApiCall) -> ApiResponse:
        address = normalise_ip(call.params["address"])
        if address is None:
            raise InvalidRequest("not an IP address")
        if not await core.bans.lift(address, call.caller.user_id, call.info):
            raise NotFound("this address is not banned")
        return ApiResponse(204)

    user_body = obj(
        {
            "email": EMAIL,
            "password": {"anyOf": [{"type": "null"}, PASSWORD]},
            "name": {"anyOf": [{"type": "null"}, PERSON_NAME]},
            "roles": ROLES,
            "email_verified": {"type": "boolean"},
        },
        ["email"],
    )
    user_changes = {
        **obj(
            {
                "email": EMAIL,
                "name": {"anyOf": [{"type": "null"}, {**PERSON_NAME, "minLength": 0}]},
                "roles": ROLES,
                "disabled": {"type": "boolean"},
                "email_verified": {"type": "boolean"},
            },
            [],
        ),
        "additionalProperties": False,
    }
    page = {"type": "integer", "minimum": 0, "maximum": MAX_PAGE}
    one_user = obj({"user": USER_SCHEMA}, ["user"])
    for endpoint in (
        Endpoint(
            "GET",
            "/api/v1/users",
            list_users,
            ADMIN,
            "List users",
            200,
            None,
            obj({"users": {"type": "array", "items": USER_SCHEMA}}, ["users"]),
            (("limit", page), ("offset", {**page, "maximum": 10**9})),
        ),
        Endpoint(
            "POST",
            "/api/v1/users",
            create_user,
            ADMIN,
            "Create a user",
            201,
            user_body,
            one_user,
            errors=((409, "`conflict`: a user with this e-mail exists"),),
        ),
        Endpoint("GET", "/api/v1/users/{user_id}", get_user, ADMIN, "A user", 200, None, one_user),
        Endpoint(
            "PATCH",
            "/api/v1/users/{user_id}",
            update_user,
            ADMIN,
            "Change name, email, roles, disabled or email_verified (role and disable changes "
            "end the user's sessions)",
            200,
            user_changes,
            one_user,
            errors=(
                (409, "`last_admin`: no enabled admin would be left; `conflict`: e-mail taken"),
            ),
        ),
        Endpoint(
            "DELETE",
            "/api/v1/users/{user_id}",
            delete_user,
            ADMIN,
            "Delete a user; every token of theirs stops working",
            204,
            errors=((409, "`last_admin`: no enabled admin would be left"),),
        ),
        Endpoint(
            "POST",
            "/api/v1/users/{user_id}/revoke-sessions",
            revoke_sessions,
            ADMIN,
            "End every session of a user",
            200,
            None,
            obj({"sessions_ended": {"type": "integer"}}, ["sessions_ended"]),
        ),
        Endpoint(
            "GET",
            "/api/v1/audit",
            audit,
            ADMIN,
            "Audit log, newest first",
            200,
            None,
            obj({"entries": {"type": "array", "items": OBJECT}}, ["entries"]),
            (
                ("limit", page),
                ("before", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}),
                ("user_id", None),
                ("event", None),
            ),
        ),
        Endpoint(
            "GET",
            "/api/v1/bans",
            list_bans,
            ADMIN,
            "Client addresses banned for repeated failed credentials, and until when",
            200,
            None,
            obj({"bans": {"type": "array", "items": OBJECT}}, ["bans"]),
        ),
        Endpoint(
            "DELETE",
            "/api/v1/bans/{address}",
            lift_ban,
            ADMIN,
            "Lift a ban (in force everywhere at once)",
            204,
        ),
    ):
        api.add(endpoint)
