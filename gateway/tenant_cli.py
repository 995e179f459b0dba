"""The tenant and API key commands (docs/operations/cli.md): `tenant create`, `key
create|rotate|revoke`.

Like the other administration commands they open the database of GATEWAY_DATABASE_URL through
the auth core, print a line for people or, with --json, exactly one JSON object (a created
key's secret is in it as `key`, shown this once), and are written to the audit log with the
actor `cli`. A revocation or rotation made here reaches running gateways through the
revocation table like one made through the API.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from auth_core.service import AuthCore, CallInfo
from gateway import inventory_cli

CLI = CallInfo()
ACTOR = "cli"


def add_commands(commands: Any) -> None:
    tenant = commands.add_parser("tenant", help="manage tenants")
    tenant_commands = tenant.add_subparsers(dest="tenant_command", required=True, metavar="ACTION")
    create = tenant_commands.add_parser("create", help="create a tenant")
    create.add_argument("name")
    create.add_argument("--origin", action="append", default=[], help="repeat for several")
    create.add_argument(
        "--allow-ip", action="append", default=[], metavar="CIDR", help="repeat for several"
    )
    create.add_argument("--json", action="store_true")
    inventory_cli.add_list_show(tenant_commands, "tenant")

    key = commands.add_parser("key", help="manage API keys")
    key_commands = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    new = key_commands.add_parser("create", help="create an API key for a tenant")
    new.add_argument("--tenant", required=True, metavar="TENANT", help="its id or name")
    new.add_argument("--name")
    new.add_argument("--expires", metavar="DURATION", help="e.g. 90d (default: never)")
    new.add_argument(
        "--allow-ip", action="append", default=None, metavar="CIDR", help="narrow the tenant's"
    )
    new.add_argument("--json", action="store_true")
    rotate = key_commands.add_parser("rotate", help="replace a key; the old one works for --grace")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", default="24h", metavar="DURATION")
    rotate.add_argument("--json", action="store_true")
    revoke = key_commands.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    revoke.add_argument("--json", action="store_true")
    inventory_cli.add_list_show(key_commands, "key")


async def tenant_create(args: argparse.Namespace, core: AuthCore) -> int:
    tenant = await core.tenants.create(args.name, args.origin, args.allow_ip, ACTOR, CLI)
    if args.json:
        print(json.dumps(tenant.public()))
        return 0
    print(f"created tenant {tenant.id} ({tenant.name})")
    if not tenant.ip_whitelist and core.settings.ip_whitelist_enabled:
        print(
            "note: its IP whitelist is empty, so its API keys are refused from every address "
            "until one is set (--allow-ip, or PUT /api/v1/tenants/{id}/ip-whitelist)",
            file=sys.stderr,
        )
    return 0


async def key_command(args: argparse.Namespace, core: AuthCore) -> int:
    keys = core.keys
    if args.key_command == "create":
        tenant = await core.tenants.find(args.tenant)
        key, secret = await keys.create(
            tenant.id,
            name=args.name,
            expires=args.expires,
            allow_ips=args.allow_ip,
            actor_id=ACTOR,
            call=CLI,
        )
        _print(args, {**key.public(), "key": secret}, f"created key {key.id}: {secret}")
    elif args.key_command == "rotate":
        new, secret, old = await keys.rotate(
            args.key_id, args.grace, tenant_id=None, actor_id=ACTOR, call=CLI
        )
        _print(
            args,
            {**new.public(), "key": secret, "previous": old.public()},
            f"created key {new.id}: {secret}\n{old.id} keeps working until {old.expires_at:.0f}",
        )
    else:
        key = await keys.revoke(args.key_id, tenant_id=None, actor_id=ACTOR, call=CLI)
        _print(args, key.public(), f"revoked key {key.id}")
    return 0


def _print(args: argparse.Namespace, document: dict[str, Any], line: str) -> None:
    print(json.dumps(document) if args.json else line)
