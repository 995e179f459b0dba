"""`gateway user set-password|disable|enable USER` and the password a command reads
(docs/operations/cli.md): from standard input with --password-stdin, else by a prompt on a terminal.

USER is a user's id or e-mail address. A new password, like a disabling, ends every session of
the user at once (through the revocation table, as the API's changes do).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from auth_core.accounts import valid_password
from auth_core.errors import InvalidRequest
from auth_core.service import AuthCore, CallInfo
from gateway.inventory_cli import find_user

CLI = CallInfo()
ACTOR = "cli"

FIRST_LOGIN_NOTE = (
    "note: {email} has no password, so cannot log in yet: they can set one with "
    "POST /api/v1/auth/forgot-password (mailed through GATEWAY_MAIL_URL), or an operator "
    "with `gateway user set-password {email}`"
)


def add_commands(user_commands: Any) -> None:
    password = user_commands.add_parser(
        "set-password", help="set a user's password (ends their sessions)"
    )
    password.add_argument("user", metavar="USER", help="their id or e-mail")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    for action, text in (
        ("disable", "refuse a user's logins and credentials, ending their sessions"),
        ("enable", "let a disabled user log in again"),
    ):
        parser = user_commands.add_parser(action, help=text)
        parser.add_argument("user", metavar="USER", help="their id or e-mail")
        parser.add_argument("--json", action="store_true")


def read_password(from_stdin: bool) -> str | None:
    """The password given on standard input, or typed twice at a prompt on a terminal; None
    when there is neither (standard input is not a terminal and --password-stdin is not
    given)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InvalidRequest("the two passwords differ")
    return first


async def set_password(args: argparse.Namespace, core: AuthCore) -> int:
    user = await find_user(args.user, core)
    password = read_password(args.password_stdin)
    if password is None:
        raise InvalidRequest("give the password on standard input with --password-stdin")
    ended = await core.accounts.set_password(
        user.id, valid_password(password), "password set by an operator"
    )
    await core.audit("password_set", "success", CLI, user_id=user.id, actor_id=ACTOR)
    print(f"set the password of {user.id} <{user.email}>; {len(ended)} sessions ended")
    return 0


async def set_disabled(args: argparse.Namespace, core: AuthCore) -> int:
    user = await find_user(args.user, core)
    disabled = args.user_command == "disable"
    changed = await core.accounts.update(user.id, {"disabled": disabled}, ACTOR, CLI)
    if args.json:
        print(json.dumps(changed.public()))
    else:
        print(f"{'disabled' if disabled else 'enabled'} user {changed.id} <{changed.email}>")
    return 0
