"""`gateway context-key UPSTREAM`: the keys a downstream service verifies its context headers
with (docs/upstream-services.md), one `kid:<base64url key>` line per
GATEWAY_SERVICE_SECRET entry, derived for that upstream alone."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from auth_core.config import AuthSettings
from auth_core.service import AuthCore
from auth_core.store import DatabaseUnavailable
from auth_core.tokens import Keyring
from gateway.context import derive_key, format_key
from gateway.routing.table import FORWARD_AUTH_AUDIENCE, RouteTable


def add_command(commands: Any) -> None:
    command = commands.add_parser(
        "context-key", help="print the keys an upstream verifies its context headers with"
    )
    command.add_argument("upstream", metavar="UPSTREAM", help="an upstream of routes.yaml")
    command.add_argument("--config", default="routes.yaml", help="the route table file")


def run(args: argparse.Namespace, settings: AuthSettings, table: RouteTable) -> int:
    audience: str = args.upstream
    if audience not in table.upstreams and audience != FORWARD_AUTH_AUDIENCE:
        known = ", ".join(sorted(table.upstreams)) or "none"
        print(
            f"gateway: {audience!r} is not an upstream of {args.config} (upstreams: {known}; "
            f"or {FORWARD_AUTH_AUDIENCE} for forwardAuth answers without aud)",
            file=sys.stderr,
        )
        return 1
    keyring = settings.service_keyring
    if keyring is None:
        try:
            keyring = asyncio.run(_stored_keyring(settings))
        except DatabaseUnavailable as exc:
            print(f"gateway: the database is unavailable: {exc}", file=sys.stderr)
            return 1
    for kid, secret in keyring.keys:
        print(format_key(kid, derive_key(secret, audience)))
    return 0


async def _stored_keyring(settings: AuthSettings) -> Keyring:
    """The embedded mode's generated secret (GATEWAY_SERVICE_SECRET unset), as serve uses it."""
    core = AuthCore(settings)
    try:
        await core.start(follow=False)
        assert core.service_keyring is not None
        return core.service_keyring
    finally:
        await core.close()
