"""The administration commands (docs/operations/cli.md): migrate, user create, users import (and,
from tenant_cli, tenant create and key create|rotate|revoke; from service_token_cli,
service-token create|revoke; from inventory_cli, NOUN list|show; from import_cli, pats import
and users import --from-postgres, docs/migration.md).

Each opens the database of GATEWAY_DATABASE_URL through the auth core, does its one thing,
and prints either a line for people or, with --json, exactly one JSON object on stdout.
Errors go to stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from auth_core.config import AuthSettings
from auth_core.errors import GatewayError
from auth_core.service import AuthCore, CallInfo
from auth_core.store import DatabaseUnavailable
from auth_core.store.migrate import migrate
from gateway import import_cli, inventory_cli, service_token_cli, tenant_cli, user_cli


def add_commands(commands: Any) -> None:
    commands.add_parser("migrate", help="apply database migrations")

    user = commands.add_parser("user", help="manage one user")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_commands.add_parser("create", help="create a user")
    create.add_argument("--email", required=True)
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else: a prompt on a terminal)",
    )
    create.add_argument("--role", action="append", default=None, help="repeat for several")
    create.add_argument("--name")
    create.add_argument(
        "--tenant", metavar="TENANT", help="a tenant's user (its admin, say): its id or name"
    )
    create.add_argument("--json", action="store_true")
    inventory_cli.add_list_show(user_commands, "user")
    user_cli.add_commands(user_commands)

    users = commands.add_parser("users", help="manage users in bulk")
    users_commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    bulk = users_commands.add_parser(
        "import",
        help="import users from a CSV file (email,password_hash,roles) or another "
        "PostgreSQL database",
    )
    bulk.add_argument("file", nargs="?")
    import_cli.add_users_import_options(bulk)
    bulk.add_argument("--json", action="store_true")
    import_cli.add_pats_commands(commands)
    tenant_cli.add_commands(commands)
    service_token_cli.add_commands(commands)
    inventory_cli.add_commands(commands)


REDIS_UNREACHABLE = (
    "gateway: could not reach Redis (GATEWAY_REDIS_URL) to announce the revocation: it "
    "stands, and running gateways apply it at their next poll of the database"
)


def run(args: argparse.Namespace, settings: AuthSettings) -> int:
    if args.command == "users":
        wrong = import_cli.check_users_import(args)
        if wrong is not None:
            print(f"gateway: {wrong}", file=sys.stderr)
            return 2
    handlers: dict[str, Callable[[argparse.Namespace, AuthCore], Awaitable[int]]] = {
        "user": _user_command,
        "users": _users_import,
        "pats": import_cli.pats_import,
        "tenant": tenant_cli.tenant_create,
        "key": tenant_cli.key_command,
        "service-token": service_token_cli.service_token_command,
    }
    handler = inventory_cli.run if "inventory" in vars(args) else handlers[args.command]
    return asyncio.run(_with_core(settings, args, handler))


def migrate_command(database_url: str) -> int:
    """`gateway migrate`: the database alone, without the auth core (and so its secrets)."""
    try:
        return asyncio.run(_migrate(database_url))
    except DatabaseUnavailable as exc:
        print(f"gateway: the database is unavailable: {exc}", file=sys.stderr)
        return 1


async def _with_core(
    settings: AuthSettings,
    args: argparse.Namespace,
    handler: Callable[[argparse.Namespace, AuthCore], Awaitable[int]],
) -> int:
    core = AuthCore(settings)
    if core.redis is not None:
        core.redis.quiet = True  # said below, once, in the CLI's words
    try:
        await core.start(follow=False)
        status = await handler(args, core)
        if core.feed.owed:
            # With GATEWAY_REDIS_URL a revocation is pushed to every running gateway, as a
            # gateway's own is; the table is the record either way, and they poll it.
            print(REDIS_UNREACHABLE, file=sys.stderr)
        return status
    except DatabaseUnavailable as exc:
        print(f"gateway: the database is unavailable: {exc}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"gateway: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        await core.close()


async def _migrate(database_url: str) -> int:
    from auth_core.store import open_database

    database = await open_database(database_url)
    try:
        applied = await migrate(database)
    finally:
        await database.close()
    print(f"applied: {', '.join(applied)}" if applied else "the database is up to date")
    return 0


async def _user_command(args: argparse.Namespace, core: AuthCore) -> int:
    if args.user_command == "set-password":
        return await user_cli.set_password(args, core)
    if args.user_command in ("disable", "enable"):
        return await user_cli.set_disabled(args, core)
    return await _user_create(args, core)


async def _user_create(args: argparse.Namespace, core: AuthCore) -> int:
    password = user_cli.read_password(args.password_stdin)
    roles = tuple(args.role or ["user"])
    from auth_core.accounts import valid_roles

    tenant_id = None
    if args.tenant is not None:
        tenant_id = (await core.tenants.find(args.tenant)).id
    user = await core.accounts.create(
        args.email,
        password,
        name=args.name,
        roles=valid_roles(list(roles)),
        verified=True,
        tenant_id=tenant_id,
    )
    await core.audit("user_create", "success", CallInfo(), user_id=user.id, actor_id="cli")
    if args.json:
        print(json.dumps(user.public()))
    else:
        print(f"created user {user.id} <{user.email}> with roles {', '.join(user.roles)}")
    if password is None:
        print(user_cli.FIRST_LOGIN_NOTE.format(email=user.email), file=sys.stderr)
    return 0


async def _users_import(args: argparse.Namespace, core: AuthCore) -> int:
    if args.from_postgres is not None:
        return await import_cli.users_from_postgres(args, core)
    path = Path(args.file)
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except OSError as exc:
        print(f"gateway: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 1
    # Rows end at \n, \r or \r\n only: str.splitlines would also split inside a row at NEL,
    # U+2028 and the like, which would then be refused (or imported) as two halves.
    report = await core.accounts.import_csv(io.StringIO(text, newline=""))
    await core.audit(
        "users_import",
        "success",
        CallInfo(),
        actor_id="cli",
        created=report.created,
        skipped=len(report.skipped),
    )
    if args.json:
        print(json.dumps({"created": report.created, "skipped": report.skipped}))
    else:
        print(f"imported {report.created} users")
        for line in report.skipped:
            print(f"skipped {line}", file=sys.stderr)
    return 0
