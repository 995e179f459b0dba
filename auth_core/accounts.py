"""Accounts: signup, e-mail verification, password reset, the admin's user management, and
users brought in from another system (CLI `user create`, `users import`)."""

from __future__ import annotations

import asyncio
import csv
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auth_core.audit import AuditTrail
from auth_core.background import Background
from auth_core.errors import Conflict, InvalidRequest, InvalidToken, LastAdmin, NotFound
from auth_core.mail import Mailer
from auth_core.models import User
from auth_core.passwords import PasswordPolicyError, Passwords, check_policy, importable
from auth_core.revocation import USER
from auth_core.revoker import Revoker
from auth_core.sessions import Sessions
from auth_core.store.base import UniqueViolation as StoreConflict
from auth_core.store.ids import new_id
from auth_core.store.records import Store
from auth_core.text import shown, unsafe_text, valid_person_name
from auth_core.throttle import account_subject
from auth_core.tokens import opaque_token, token_hash

if TYPE_CHECKING:
    from auth_core.calls import CallInfo

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 - a token kind, not a secret
VERIFY_LIFETIME = 48 * 3600.0
RESET_LIFETIME = 3600.0
ROLE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
# Deliberately loose: one @, something before, a dot after. Delivery is the real test.
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
MAX_EMAIL = 254


def valid_email(email: object) -> str:
    if (
        not isinstance(email, str)
        or len(email) > MAX_EMAIL
        or not EMAIL.fullmatch(email)
        or unsafe_text(email)
    ):
        raise InvalidRequest("email must be an e-mail address (no control characters)")
    return email.strip().lower()


def valid_roles(roles: object) -> tuple[str, ...]:
    if not isinstance(roles, list | tuple) or not all(
        isinstance(role, str) and ROLE.fullmatch(role) for role in roles
    ):
        raise InvalidRequest("roles must be a list of lower-case names")
    return tuple(dict.fromkeys(roles))


def valid_password(password: object) -> str:
    if not isinstance(password, str):
        raise InvalidRequest("password must be a string")
    try:
        check_policy(password)
    except PasswordPolicyError as exc:
        raise InvalidRequest(str(exc)) from None
    return password


def _enabled_admin(roles: tuple[str, ...], disabled: bool) -> bool:
    return "admin" in roles and not disabled


@dataclass(frozen=True, slots=True)
class ImportReport:
    created: int
    skipped: list[str]


class Accounts:
    def __init__(
        self,
        *,
        store: Store,
        audit: AuditTrail,
        revoker: Revoker,
        sessions: Sessions,
        passwords: Passwords,
        mailer: Mailer,
        background: Background,
    ) -> None:
        self._store = store
        self._audit = audit
        self._revoker = revoker
        self._sessions = sessions
        self._passwords = passwords
        self._mailer = mailer
        self._background = background

    async def create(
        self,
        email: str,
        password: str | None,
        *,
        name: str | None = None,
        roles: tuple[str, ...] = ("user",),
        verified: bool = False,
        tenant_id: str | None = None,
        external_id: str | None = None,
    ) -> User:
        store = self._store
        email = valid_email(email)
        name = valid_person_name(name)
        hashed = None
        if password is not None:
            hashed = await asyncio.to_thread(self._passwords.hash, valid_password(password))
        try:
            return await store.users.create(
                email,
                hashed,
                name=name,
                roles=roles,
                email_verified=verified,
                tenant_id=tenant_id,
                external_id=external_id,
            )
        except StoreConflict:
            raise Conflict("a user with this e-mail exists") from None

    async def signup(
        self, email: str, password: str, name: str | None, call: CallInfo, base_url: str
    ) -> User:
        """A new, unverified account; its verification mail goes after the answer. For an
        address that has an account already, the same answer: a user of the same shape (the
        address and name given, a new id that names nobody) after the same work (the password
        is hashed and the insert tried), and the mail to the address says so instead. Nothing
        of the existing account is shown or changed."""
        try:
            user = await self.create(email, password, name=name)
        except Conflict:
            now = time.time()
            stand_in = User(
                id=new_id("usr"),
                email=valid_email(email),
                name=name,
                roles=("user",),
                tenant_id=None,
                email_verified=False,
                disabled=False,
                created_at=now,
                updated_at=now,
            )
            await self._audit.append("signup", "existing", call, email=stand_in.email)
            self._background.run(self._send_already_registered(stand_in.email, base_url))
            return stand_in
        await self._audit.append("signup", "success", call, user_id=user.id)
        self._background.run(self.send_verification(user, base_url))
        return user

    async def _send_already_registered(self, email: str, base_url: str) -> None:
        await self._mailer.send(
            email,
            "You already have an account",
            "Someone, perhaps you, tried to sign up with this address, which already has an "
            "account. To log in, use your password; if you forgot it, ask for a reset with "
            f"POST {base_url}/api/v1/auth/forgot-password (JSON: email).\n\n"
            "If it was not you, ignore this mail: nothing was changed.\n",
        )

    async def send_verification(self, user: User, base_url: str) -> None:
        token = opaque_token()
        await self._store.one_time_tokens.add(
            VERIFY_EMAIL, user.id, token_hash(token), VERIFY_LIFETIME
        )
        await self._mailer.send(
            user.email,
            "Confirm your e-mail address",
            "Confirm your address by sending this token to "
            f"POST {base_url}/api/v1/auth/verify-email (JSON: token):\n\n{token}\n\n"
            "It is valid for 48 hours and can be used once.\n",
        )

    def resend_verification_later(self, email: str, call: CallInfo, base_url: str) -> None:
        """A new verification mail, if the address has an account still to confirm; after
        the answer, which is the same whatever the case (as forgot-password)."""
        self._background.run(self._resend_verification(email, call, base_url))

    async def _resend_verification(self, email: str, call: CallInfo, base_url: str) -> None:
        user = await self._store.users.by_email(email)
        if user is None or user.disabled or user.email_verified:
            await self._audit.append("verify_email_resend", "skipped", call)
            return
        await self.send_verification(user, base_url)
        await self._audit.append("verify_email_resend", "sent", call, user_id=user.id)

    async def verify_email(self, token: str, call: CallInfo) -> User:
        store = self._store
        user_id = await store.one_time_tokens.consume(VERIFY_EMAIL, token_hash(token))
        if user_id is None:
            await self._audit.append("verify_email", "failure", call)
            raise InvalidToken("the verification token is not valid", audited=True)
        user = await store.users.update(user_id, email_verified=True)
        if user is None:
            raise InvalidToken("the verification token is not valid")
        await self._audit.append("verify_email", "success", call, user_id=user_id)
        return user

    def forgot_password_later(self, email: str, call: CallInfo, base_url: str) -> None:
        """`forgot_password` after the answer: a known address costs a token and a mail, an
        unknown one a lookup, and the time of the answer must not tell them apart. The work is
        awaited at shutdown (AuthCore.close), so no mail is lost to a restart."""
        self._background.run(self.forgot_password(email, call, base_url))

    async def forgot_password(self, email: str, call: CallInfo, base_url: str) -> None:
        """Send a reset token if the account exists; say nothing either way."""
        store = self._store
        user = await store.users.by_email(email) if isinstance(email, str) else None
        if user is None or user.disabled:
            await self._audit.append("forgot_password", "unknown", call)
            return
        token = opaque_token()
        await store.one_time_tokens.add(RESET_PASSWORD, user.id, token_hash(token), RESET_LIFETIME)
        await self._mailer.send(
            user.email,
            "Reset your password",
            f"To choose a new password, send this token with it to "
            f"POST {base_url}/api/v1/auth/reset-password (JSON: token, password):\n\n{token}\n\n"
            "It is valid for one hour and can be used once. If you did not ask, ignore this.\n",
        )
        await self._audit.append("forgot_password", "sent", call, user_id=user.id)

    async def reset_password(self, token: str, password: str, call: CallInfo) -> None:
        """Set a new password with a reset token; every session of the user ends."""
        store = self._store
        password = valid_password(password)
        # Spends every reset token of the user at once: an older mail, perhaps read by
        # someone else, must not undo (or outlive) this reset.
        user_id = await store.one_time_tokens.consume_all(RESET_PASSWORD, token_hash(token))
        if user_id is None:
            await self._audit.append("reset_password", "failure", call)
            raise InvalidToken("the reset token is not valid", audited=True)
        ended = await self.set_password(user_id, password, "password reset")
        user = await store.users.get(user_id)
        if user is not None:
            # Whoever proved they read the mail may try at once, from where they are.
            await self._sessions.throttle.forget_account(
                account_subject(user.email), call.ip or "-"
            )
        await self._audit.append(
            "password_change", "success", call, user_id=user_id, sessions_ended=len(ended)
        )

    async def set_password(self, user_id: str, password: str, reason: str) -> list[str]:
        """A new password for the user: every session ends and every reset token still out
        is void (whatever changes a password goes through here). The sessions ended."""
        store = self._store
        hashed = await asyncio.to_thread(self._passwords.hash, password)
        await store.users.set_password_hash(user_id, hashed)
        await store.one_time_tokens.void(RESET_PASSWORD, user_id)
        await store.users.login_succeeded(user_id)  # a reset also unlocks the account
        return await self._sessions.revoke_user(user_id, reason)

    # -- administration -------------------------------------------------------------------

    async def get(self, user_id: str) -> User:
        user = await self._store.users.get(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def update(
        self, user_id: str, changes: dict[str, Any], actor_id: str | None, call: CallInfo
    ) -> User:
        fields: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "name":
                fields["name"] = valid_person_name(value)
            elif key == "email":
                fields["email"] = valid_email(value)
            elif key == "roles":
                fields["roles"] = valid_roles(value)
            elif key in ("disabled", "email_verified"):
                if not isinstance(value, bool):
                    raise InvalidRequest(f"{key} must be true or false")
                fields[key] = value
            else:
                raise InvalidRequest(f"{key} cannot be changed")
        if "email" in fields:
            # A new address is not proven by the old one's verification (upstreams are told,
            # X-User-Email-Verified), unless the same change says it is.
            fields.setdefault("email_verified", False)
        try:
            async with self._store.db.transaction() as db:
                records = Store(db)
                before = await records.users.get(user_id)
                if before is None:
                    raise NotFound("no such user")
                stays_admin = _enabled_admin(
                    fields.get("roles", before.roles), fields.get("disabled", before.disabled)
                )
                if _enabled_admin(before.roles, before.disabled) and not stays_admin:
                    await self._keep_an_admin(records, user_id, "user_update", actor_id, call)
                user = await records.users.update(user_id, **fields)
                if user is not None and user.email != before.email:
                    # Tokens mailed to the old address must not confirm the new one, nor
                    # reset the account of whoever now owns it.
                    await records.one_time_tokens.void(VERIFY_EMAIL, user_id)
                    await records.one_time_tokens.void(RESET_PASSWORD, user_id)
        except StoreConflict:
            raise Conflict("a user with this e-mail exists") from None
        if user is None:
            raise NotFound("no such user")
        unverified = before.email_verified and not user.email_verified
        if (
            "roles" in fields
            or "email" in fields
            or unverified
            or (user.disabled and not before.disabled)
        ):
            # Roles, e-mail and whether it is verified are carried in access tokens (and on to
            # upstreams as context headers): the old tokens must not outlive the change.
            await self._sessions.revoke_user(user_id, "account changed")
        elif before.disabled and not user.disabled:
            # Nothing of theirs is alive to end, but workers cached their PATs as refused.
            await self._revoker.revoke(USER, user_id)
        await self._audit.append(
            "user_update",
            "success",
            call,
            user_id=user_id,
            actor_id=actor_id,
            fields=sorted(fields),
        )
        return user

    async def delete(self, user_id: str, actor_id: str | None, call: CallInfo) -> None:
        async with self._store.db.transaction() as db:
            records = Store(db)
            user = await records.users.get(user_id)
            if user is None:
                raise NotFound("no such user")
            if _enabled_admin(user.roles, user.disabled):
                await self._keep_an_admin(records, user_id, "user_delete", actor_id, call)
            await records.users.delete(user_id)
        # Its sessions went with the row; this voids the access tokens still out.
        await self._sessions.revoke_user(user_id, "user deleted")
        await self._audit.append("user_delete", "success", call, user_id=user_id, actor_id=actor_id)

    async def _keep_an_admin(
        self, records: Store, user_id: str, event: str, actor_id: str | None, call: CallInfo
    ) -> None:
        """Refuse (LastAdmin) unless an enabled admin other than `user_id` remains: nobody
        could manage users again, and the way back would be the database itself."""
        if any(admin != user_id for admin in await records.users.lock_admins()):
            return
        self._audit.later(
            event, "failure", call, user_id=user_id, actor_id=actor_id, reason="last_admin"
        )
        raise LastAdmin("this is the last enabled admin: make another user an admin first")

    async def import_csv(self, lines: Iterable[str]) -> ImportReport:
        """Users from `email,password_hash,roles` rows (roles `;`-separated)."""
        store = self._store
        rows = list(lines)
        if rows and rows[0].startswith("\ufeff"):
            rows[0] = rows[0][1:]  # the byte-order mark spreadsheets write
        reader = csv.DictReader(rows)
        if reader.fieldnames is None or not {"email", "password_hash", "roles"} <= set(
            reader.fieldnames
        ):
            raise InvalidRequest("the header must be email,password_hash,roles")
        created = 0
        skipped: list[str] = []
        for number, row in enumerate(reader, start=2):
            email = (row.get("email") or "").strip()
            stored = (row.get("password_hash") or "").strip()
            try:
                email = valid_email(email)
                if not importable(stored):
                    raise InvalidRequest("unsupported password hash format")
                roles = valid_roles(
                    [r.strip() for r in (row.get("roles") or "").split(";") if r.strip()]
                )
                await store.users.create(
                    email, stored, roles=roles or ("user",), email_verified=True
                )
                created += 1
            except (InvalidRequest, StoreConflict) as exc:
                reason = "already exists" if isinstance(exc, StoreConflict) else str(exc)
                # Escaped: the line goes to a terminal, and the address may be what was refused.
                skipped.append(f"line {number} ({shown(email) or '?'}): {reason}")
        return ImportReport(created, skipped)
