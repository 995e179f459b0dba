"""What the auth core's tests share besides fixtures: waiting for background work, two workers
on one database, a second worker on the same database and its reading of the revocation table,
how an access token is refused, reading the mail outbox."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from auth_core import credentials
from auth_core.errors import GatewayError
from auth_core.service import AuthCore
from tests import support

PASSWORD = "correct horse battery staple"


async def settle(core: AuthCore) -> None:
    """Wait for the work the core runs off the answer's path (failed-login counting)."""
    await core.background_work.drain()


@asynccontextmanager
async def two_cores(
    tmp_path: Path, database_url: str, **settings: Any
) -> AsyncIterator[tuple[AuthCore, AuthCore]]:
    """Two AuthCores on one database, started as two workers (or replicas) are: `settings` as
    for `support.auth_settings`."""
    base = support.auth_settings(tmp_path, database_url=database_url, **settings)
    first, second = AuthCore(base), AuthCore(base)
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@asynccontextmanager
async def another_worker(core: AuthCore) -> AsyncIterator[AuthCore]:
    """A second AuthCore on the same database, reading the revocation table only when told to
    (`sync`)."""
    other = AuthCore(core.settings)
    await other.start(follow=False)
    try:
        yield other
    finally:
        await other.close()


async def sync(worker: AuthCore) -> None:
    """Read the revocation table now, as the worker's follower would."""
    await worker.revoked.sync(worker.store.revocations)


def new_credential(prefix: str) -> tuple[str, str, str]:
    """A new secret of the kind `prefix` names, then its hash and display prefix as the store
    keeps them (for a row written straight to the store, bypassing the service's checks)."""
    secret = credentials.generate(prefix)
    return secret, credentials.credential_hash(secret), credentials.display_prefix(secret)


def refused(core: AuthCore, token: str) -> type[GatewayError] | None:
    """The error class authenticate_access_token answers with, or None if it accepts."""
    try:
        core.authenticate_access_token(token)
    except GatewayError as exc:
        return type(exc)
    return None


def outbox(directory: Path) -> list[EmailMessage]:
    """The messages in an outbox directory, oldest first."""
    folder = directory / "outbox"
    if not folder.exists():
        return []
    return [
        message_from_bytes(path.read_bytes(), _class=EmailMessage, policy=policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


_TOKEN_LINE = re.compile(r"^[A-Za-z0-9_-]{40,}$")


def mailed_token(message: EmailMessage) -> str:
    """The one-time token a verification or reset mail carries on a line of its own."""
    body = message.get_content()
    tokens = [line for line in body.splitlines() if _TOKEN_LINE.match(line.strip())]
    assert len(tokens) == 1, body
    return tokens[0].strip()
