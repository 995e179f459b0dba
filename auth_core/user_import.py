"""Users imported from another service's rows, all or none (`gateway users import
--from-postgres`, docs/migration.md), each mapped from its old id to its new user id.

A row is an e-mail, a password hash in a format the gateway verifies (passwords.importable),
roles (text separated by `;`, `,` or spaces, or a PostgreSQL array; none: `user`) and, when
the source has them, the old id. One refused row and nothing is imported. A user whose e-mail
the gateway has already is left as it is (password, roles) and mapped to its id, so running
the same import again creates nobody and writes the same mapping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from auth_core.accounts import valid_email, valid_roles
from auth_core.errors import InvalidRequest
from auth_core.passwords import importable
from auth_core.store.base import UniqueViolation
from auth_core.store.records import Store
from auth_core.text import shown

_ROLE_SEPARATORS = re.compile(r"[;,\s]+")


@dataclass(frozen=True, slots=True)
class SourceUser:
    """One row of the source: `where` names it in a report (`row 3`)."""

    where: str
    email: object
    password_hash: object
    roles: object
    old_id: object = None


@dataclass
class UsersImportReport:
    """What an import did; `refused` non-empty: nothing was imported."""

    created: int = 0
    existing: int = 0  # e-mails the gateway had: left as they are, mapped
    mapping: list[tuple[str, str, str]] = field(default_factory=list)  # old id, user id, e-mail
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Valid:
    where: str
    email: str
    password_hash: str
    roles: tuple[str, ...]
    old_id: str | None


class _RolledBack(Exception):
    """Ends the transaction of an import with refused rows."""


def _roles(value: object) -> tuple[str, ...]:
    if value is None:
        names: list[object] = []
    elif isinstance(value, str):
        names = [name for name in _ROLE_SEPARATORS.split(value.strip()) if name]
    elif isinstance(value, list | tuple):
        names = list(value)
    else:
        raise InvalidRequest("roles must be text or an array of names")
    return valid_roles(names) or ("user",)


def _valid(row: SourceUser, with_ids: bool) -> _Valid:
    email = valid_email(row.email.strip() if isinstance(row.email, str) else row.email)
    stored = row.password_hash.strip() if isinstance(row.password_hash, str) else ""
    if not importable(stored):
        raise InvalidRequest(
            "no password hash in a format the gateway verifies (bcrypt, argon2, "
            "pbkdf2-sha256 of passlib or Django)"
        )
    old_id = None
    if with_ids:
        if row.old_id is None or not str(row.old_id).strip():
            raise InvalidRequest("no id")
        old_id = str(row.old_id).strip()
    return _Valid(row.where, email, stored, _roles(row.roles), old_id)


def _where(row: SourceUser, email: object, reason: str) -> str:
    shown_email = shown(email) if isinstance(email, str) else "?"
    return f"{row.where} ({shown_email or '?'}): {reason}"


async def import_users(
    store: Store, rows: Sequence[SourceUser], *, with_ids: bool
) -> UsersImportReport:
    """Create the users of `rows` (all or none); `with_ids`: each row has its old id."""
    report = UsersImportReport()
    valid: list[_Valid] = []
    emails: dict[str, str] = {}
    ids: dict[str, str] = {}
    for row in rows:
        try:
            user = _valid(row, with_ids)
        except InvalidRequest as exc:
            report.refused.append(_where(row, row.email, exc.detail))
            continue
        if user.email in emails:
            report.refused.append(
                _where(row, user.email, f"the same e-mail as {emails[user.email]}")
            )
            continue
        if user.old_id is not None and user.old_id in ids:
            report.refused.append(_where(row, user.email, f"the same id as {ids[user.old_id]}"))
            continue
        emails[user.email] = row.where
        if user.old_id is not None:
            ids[user.old_id] = row.where
        valid.append(user)
    if report.refused:
        return report
    try:
        async with store.db.transaction() as db:
            records = Store(db)
            for user in valid:
                found = await records.users.by_email(user.email)
                if found is not None:
                    report.existing += 1
                    user_id = found.id
                else:
                    try:
                        created = await records.users.create(
                            user.email, user.password_hash, roles=user.roles, email_verified=True
                        )
                    except UniqueViolation:
                        report.refused.append(f"{user.where} ({user.email}): already exists")
                        raise _RolledBack from None
                    report.created += 1
                    user_id = created.id
                if user.old_id is not None:
                    report.mapping.append((user.old_id, user_id, user.email))
    except _RolledBack:
        report.created = report.existing = 0
        report.mapping.clear()
    return report
