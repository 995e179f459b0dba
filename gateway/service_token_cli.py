"""`gateway service-token create NAME | revoke ID` (and, from inventory_cli, `list | show ID`):
the credentials of internal services (docs/authentication.md, service tokens).

Like the other administration commands they open the database of GATEWAY_DATABASE_URL through
the auth core, print a line for people or, with --json, exactly one JSON object (a created
token's secret is in it as `token`, shown this once), and are written to the audit log with the
actor `cli`. A revocation made here reaches running gateways through the revocation table like
one made through the API.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from auth_core.service import AuthCore, CallInfo
from gateway import inventory_cli

CLI = CallInfo()
ACTOR = "cli"


def add_commands(commands: Any) -> None:
    token = commands.add_parser("service-token", help="manage the tokens of internal services")
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token (printed this once)")
    create.add_argument("name", help="the calling service's name, unique among live tokens")
    create.add_argument("--json", action="store_true")
    revoke = actions.add_parser("revoke", help="revoke a token everywhere at once")
    revoke.add_argument("token_id")
    revoke.add_argument("--json", action="store_true")
    inventory_cli.add_list_show(actions, "service-token")


async def service_token_command(args: argparse.Namespace, core: AuthCore) -> int:
    tokens = core.service_tokens
    if args.action == "create":
        token, secret = await tokens.create(args.name, actor_id=ACTOR, call=CLI)
        document = {**token.public(), "token": secret}
        _print(args, document, f"created service token {token.id} ({token.name}): {secret}")
    else:
        token = await tokens.revoke(args.token_id, actor_id=ACTOR, call=CLI)
        _print(args, token.public(), f"revoked service token {token.id} ({token.name})")
    return 0


def _print(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    print(json.dumps(document) if args.json else text)
