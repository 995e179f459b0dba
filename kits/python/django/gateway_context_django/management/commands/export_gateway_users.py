"""`manage.py export_gateway_users`: the Django users as the CSV `gateway users import` takes
(`email,password_hash,roles`, roles `;`-separated), with their password hashes, so that they
log in at the gateway with the password they had here.

Django's default pbkdf2_sha256 hashes go over as they are (the gateway verifies them, then
re-hashes with argon2id at the first login); Django's argon2 and bcrypt hashes are rewritten
to the standard form the gateway reads. A user who cannot be imported (no e-mail, an unusable
password, another hash format, a duplicate e-mail, inactive) is left out and named on stderr.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

# The gateway's role names (auth_core/accounts.py: ROLE).
ROLE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
HEADER = ("email", "password_hash", "roles")


def gateway_hash(stored: str) -> str | None:
    """The hash in a form the gateway imports, or None."""
    if stored.startswith("pbkdf2_sha256$"):
        return stored
    if stored.startswith("argon2$argon2"):  # Django writes "argon2" + the PHC string
        return stored[len("argon2") :]
    if stored.startswith("bcrypt$$2"):  # Django's BCryptPasswordHasher (not bcrypt_sha256)
        return stored[len("bcrypt$") :]
    return None


class Command(BaseCommand):
    help = "Export the users as `gateway users import` CSV (email,password_hash,roles)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", default="-", help="a file (default: standard output)")
        parser.add_argument(
            "--role",
            action="append",
            default=None,
            help="every user's roles (default: user); repeat for several",
        )
        parser.add_argument(
            "--superuser-role",
            default="admin",
            help="added for superusers (default: admin; '' for none)",
        )
        parser.add_argument(
            "--staff-role", default="", help="added for staff users (default: none)"
        )
        parser.add_argument(
            "--group-roles", action="store_true", help="add each group's name as a role"
        )
        parser.add_argument(
            "--include-inactive", action="store_true", help="export inactive users too"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base = options["role"] or ["user"]
        for role in [*base, options["superuser_role"], options["staff_role"]]:
            if role and not ROLE.fullmatch(role):
                raise CommandError(f"{role!r} is not a gateway role (lower-case, a-z0-9_-)")
        if options["output"] == "-":
            written = self._write(sys.stdout, base, options)
        else:
            with open(options["output"], "w", encoding="utf-8", newline="") as out:
                written = self._write(out, base, options)
        self.stderr.write(f"exported {written} users")

    def _write(self, out: TextIO, base: list[str], options: dict[str, Any]) -> int:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        written = 0
        for row in self._rows(base, options):
            writer.writerow(row)
            written += 1
        return written

    def _rows(self, base: list[str], options: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
        model = get_user_model()
        email_field = model.get_email_field_name()
        users = model._default_manager.order_by("pk")
        if options["group_roles"]:
            users = users.prefetch_related("groups")
        seen: set[str] = set()
        for user in users:
            name = f"user {user.pk} ({user.get_username()})"
            email = (getattr(user, email_field, "") or "").strip().lower()
            stored = gateway_hash(user.password or "")
            if not user.is_active and not options["include_inactive"]:
                reason = "inactive"
            elif not email:
                reason = "no e-mail address"
            elif email in seen:
                reason = f"the e-mail address {email} again"
            elif not user.has_usable_password():
                reason = "no usable password (it could not log in here either)"
            elif stored is None:
                # The algorithm's name only, never the hash: a value without `$` (Django's
                # unsalted MD5, a plain text) has no name, and is shown as `unknown`.
                password = user.password or ""
                kind = password.split("$", 1)[0][:20] if "$" in password else "unknown"
                reason = f"a password hash the gateway cannot import ({kind})"
            else:
                seen.add(email)
                yield email, stored, ";".join(self._roles(user, base, options))
                continue
            self.stderr.write(f"skipped {name}: {reason}")

    def _roles(self, user: Any, base: list[str], options: dict[str, Any]) -> list[str]:
        roles = list(base)
        if user.is_superuser and options["superuser_role"]:
            roles.append(options["superuser_role"])
        if user.is_staff and options["staff_role"]:
            roles.append(options["staff_role"])
        if options["group_roles"]:
            for group in user.groups.all():
                if ROLE.fullmatch(group.name):
                    roles.append(group.name)
                else:
                    self.stderr.write(f"user {user.pk}: group {group.name!r} is not a role name")
        return list(dict.fromkeys(roles))
