"""`gateway NOUN list` and `gateway NOUN show REF` for users, tenants, API keys, personal access
tokens, service tokens, sessions and bans (docs/operations/cli.md).

They read the database of GATEWAY_DATABASE_URL through the auth core and print a table (list)
or `field value` lines (show), or with --json one JSON object: `{"users": [...]}` for a list,
the record for a show. What they print is the records' public documents, as the API answers
them: never a secret or a hash.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from auth_core.errors import NotFound
from auth_core.models import Pat, User
from auth_core.service import AuthCore
from gateway.cli_output import print_list, print_one

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Noun:
    plural: str  # the key of a list's JSON object
    reference: str  # what `show` takes
    columns: tuple[str, ...]  # a list's table
    listing: Callable[[argparse.Namespace, AuthCore], Awaitable[list[Document]]]
    showing: Callable[[str, AuthCore], Awaitable[Document]]


async def find_user(reference: str, core: AuthCore) -> User:
    """The user of that id or, failing that, of that e-mail address."""
    user = await core.store.users.get(reference)
    if user is None and "@" in reference:
        user = await core.store.users.by_email(reference.strip().lower())
    if user is None:
        raise NotFound(f"no such user: {reference!r} is neither a user's id nor their e-mail")
    return user


async def _users(args: argparse.Namespace, core: AuthCore) -> list[Document]:
    tenant_id = None if args.tenant is None else (await core.tenants.find(args.tenant)).id
    found: list[Document] = []
    while True:  # the table pages; the command lists them all
        page = await core.store.users.list(limit=500, offset=len(found), tenant_id=tenant_id)
        found += [user.public() for user in page]
        if len(page) < 500:
            return found


async def _user(reference: str, core: AuthCore) -> Document:
    return (await find_user(reference, core)).public()


async def _tenants(args: argparse.Namespace, core: AuthCore) -> list[Document]:
    found: list[Document] = []
    while True:
        page = await core.store.tenants.list(limit=500, offset=len(found))
        found += [tenant.public() for tenant in page]
        if len(page) < 500:
            return found


async def _tenant(reference: str, core: AuthCore) -> Document:
    return (await core.tenants.find(reference)).public()


async def _keys(args: argparse.Namespace, core: AuthCore) -> list[Document]:
    table = core.store.api_keys
    if args.tenant is None:
        return [key.public() for key in await table.every()]
    tenant = await core.tenants.find(args.tenant)
    return [key.public() for key in await table.of_tenant(tenant.id)]


async def _key(reference: str, core: AuthCore) -> Document:
    key = await core.store.api_keys.get(reference)
    if key is None:
        raise NotFound(f"no such API key: {reference!r}")
    return key.public()


def _pat(pat: Pat) -> Document:
    return {"id": pat.id, "user_id": pat.user_id, **pat.public()}


async def _pats(args: argparse.Namespace, core: AuthCore) -> list[Document]:
    table = core.store.pats
    if args.user is None:
        return [_pat(pat) for pat in await table.every()]
    user = await find_user(args.user, core)
    return [_pat(pat) for pat in await table.of_user(user.id)]


async def _pat_show(reference: str, core: AuthCore) -> Document:
    pat = await core.store.pats.get(reference)
    if pat is None:
        raise NotFound(f"no such personal access token: {reference!r}")
    return _pat(pat)


async def _service_tokens(args: argparse.Namespace, core: AuthCore) -> list[Document]:
    return [token.public() for token in await core.service_tokens.list()]


async def _service_token(reference: str, core: AuthCore) -> Document:
    token = await core.store.service_tokens.get(reference)
    if token is None:
        raise NotFound(f"no such service token: {reference!r}")
    return token.public()


async def _sessions(args: argparse.Namespace, core: AuthCore) -> list[Document]:
    user_id = None if args.user is None else (await find_user(args.user, core)).id
    return [session.public() for session in await core.store.sessions.live(user_id)]


async def _session(reference: str, core: AuthCore) -> Document:
    session = await core.store.sessions.get(reference)
    if session is None:
        raise NotFound(f"no such session: {reference!r}")
    return session.public()


async def _bans(args: argparse.Namespace, core: AuthCore) -> list[Document]:
    return sorted(await core.bans.active(), key=lambda ban: float(ban["banned_at"]))


async def _ban(reference: str, core: AuthCore) -> Document:
    for ban in await core.bans.active():
        if ban["address"] == reference:
            return dict(ban)
    raise NotFound(f"{reference} is not banned")


NOUNS = {
    "user": Noun(
        "users",
        "ID or e-mail",
        ("id", "email", "roles", "tenant_id", "disabled", "created_at"),
        _users,
        _user,
    ),
    "tenant": Noun(
        "tenants",
        "ID or name",
        ("id", "name", "origins", "ip_whitelist", "created_at"),
        _tenants,
        _tenant,
    ),
    "key": Noun(
        "api_keys",
        "ID",
        ("id", "tenant_id", "name", "prefix", "expires_at", "last_used_at", "revoked_at"),
        _keys,
        _key,
    ),
    "pat": Noun(
        "pats",
        "ID",
        ("id", "user_id", "name", "prefix", "scopes", "expires_at", "last_used_at"),
        _pats,
        _pat_show,
    ),
    "service-token": Noun(
        "service_tokens",
        "ID",
        ("id", "name", "prefix", "created_at", "last_used_at", "revoked_at"),
        _service_tokens,
        _service_token,
    ),
    "session": Noun(
        "sessions",
        "ID",
        ("id", "user_id", "ip", "created_at", "expires_at", "refreshed_at"),
        _sessions,
        _session,
    ),
    "ban": Noun("bans", "ADDRESS", ("address", "banned_at", "until"), _bans, _ban),
}

# The filters a list takes: --tenant (by id or name), --user (by id or e-mail).
_FILTERS = {
    "user": ("--tenant",),
    "key": ("--tenant",),
    "pat": ("--user",),
    "session": ("--user",),
}
_HELP = {
    "--tenant": ("TENANT", "only this tenant's (its id or name)"),
    "--user": ("USER", "only this user's (their id or e-mail)"),
}


def add_list_show(actions: Any, noun: str) -> None:
    """Add `list` and `show` to the sub-commands of a noun."""
    described = NOUNS[noun]
    plural = described.plural.replace("_", " ")
    listing = actions.add_parser("list", help=f"list the {plural}")
    for option in _FILTERS.get(noun, ()):
        metavar, text = _HELP[option]
        listing.add_argument(option, metavar=metavar, help=text)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(inventory=noun)
    show = actions.add_parser("show", help=f"show one of the {plural}")
    show.add_argument("reference", metavar=described.reference.replace(" ", "_").upper())
    show.add_argument("--json", action="store_true")
    show.set_defaults(inventory=noun)


def add_commands(commands: Any) -> None:
    """The nouns that have no other action than list and show."""
    for noun, text in (
        ("pat", "list personal access tokens (users make them through the API)"),
        ("session", "list live sessions"),
        ("ban", "list the addresses banned for failed credentials"),
    ):
        parser = commands.add_parser(noun, help=text)
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        add_list_show(actions, noun)


async def run(args: argparse.Namespace, core: AuthCore) -> int:
    noun = NOUNS[args.inventory]
    if "reference" in vars(args):
        print_one(args.json, await noun.showing(args.reference, core))
    else:
        print_list(args.json, noun.plural, await noun.listing(args, core), noun.columns)
    return 0
