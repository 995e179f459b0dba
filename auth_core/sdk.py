"""SDK sessions: a tenant's backend, holding an API key and calling from a
whitelisted address, opens sessions for its end users, found or created by the tenant's own
`external_user_id`. The token pair is bound to the tenant, so the browser that uses it (flow 3)
is held to the tenant's origin whitelist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auth_core.accounts import valid_email, valid_roles
from auth_core.audit import AuditTrail
from auth_core.errors import InvalidRequest
from auth_core.models import User
from auth_core.sessions import Sessions, TokenPair
from auth_core.store import UniqueViolation
from auth_core.store.records import Store
from auth_core.text import plain_text, valid_person_name

if TYPE_CHECKING:
    from auth_core.calls import CallInfo

MAX_EXTERNAL_ID = 256
# Roles an SDK backend may not hand its end users: they would reach the platform's or the
# tenant's administration.
RESERVED_ROLES = frozenset({"admin", "tenant_admin"})


def external_id_of(body: dict[str, Any]) -> str:
    value = body.get("external_user_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_EXTERNAL_ID:
        raise InvalidRequest(
            f"external_user_id must be a string of 1 to {MAX_EXTERNAL_ID} characters"
        )
    return plain_text(value.strip(), "external_user_id")


class SdkSessions:
    def __init__(self, *, store: Store, audit: AuditTrail, sessions: Sessions) -> None:
        self._store = store
        self._audit = audit
        self._sessions = sessions

    async def open(
        self, tenant_id: str, key_id: str | None, body: dict[str, Any], call: CallInfo
    ) -> TokenPair:
        external_id = external_id_of(body)
        email = body.get("email")
        name = valid_person_name(body.get("name"))
        roles = valid_roles(body["roles"]) if "roles" in body else None
        if roles is not None and RESERVED_ROLES.intersection(roles):
            raise InvalidRequest("an SDK session cannot carry the admin or tenant_admin role")
        contact = "" if email is None else valid_email(email)
        user = await self._user(tenant_id, external_id, contact, name, roles)
        if user.disabled:
            raise InvalidRequest("this user is disabled")
        pair = await self._sessions.open(user, call)
        await self._audit.append(
            "sdk_session",
            "success",
            call,
            user_id=user.id,
            session_id=pair.session.id,
            tenant_id=tenant_id,
            key_id=key_id,
        )
        return pair

    async def _user(
        self,
        tenant_id: str,
        external_id: str,
        email: str,
        name: str | None,
        roles: tuple[str, ...] | None,
    ) -> User:
        """The end user, created on first sight; given roles, name or e-mail that differ
        from the stored ones replace them (roles not given: unchanged, "user" for a new one)."""
        users = self._store.users
        found = await users.by_external_id(tenant_id, external_id)
        if found is None:
            try:
                return await users.create(
                    email,
                    None,
                    name=name,
                    roles=roles or ("user",),
                    tenant_id=tenant_id,
                    external_id=external_id,
                )
            except UniqueViolation:  # created by a concurrent call: use theirs
                found = await users.by_external_id(tenant_id, external_id)
                if found is None:
                    raise
        changes: dict[str, Any] = {}
        if roles is not None and roles != found.roles:
            changes["roles"] = roles
        if name is not None and name != found.name:
            changes["name"] = name
        if email and email != found.email:
            changes["contact_email"] = email
            changes["email_verified"] = False  # the tenant's word, never proven to us
        if not changes:
            return found
        updated = await users.update(found.id, **changes)
        assert updated is not None
        if "roles" in changes or "contact_email" in changes:
            # Tokens carry roles and e-mail (on to upstreams as context headers): those issued
            # with the old ones die with them.
            await self._sessions.revoke_user(found.id, "account changed by the tenant")
        return updated
