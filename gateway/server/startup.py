"""What start-up checks once, before any worker is forked: the database answers, its schema is
current, the port can be bound (docs/operations/running.md). A failure is one line on stderr and
exit
status 1, never a traceback: an operator reads what is wrong, an orchestrator sees the exit."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from auth_core.store import DatabaseUnavailable, open_database
from auth_core.store.migrate import migrate

log = logging.getLogger("gateway.server")

EXIT_START_FAILED = 3  # a worker's exit status when it could not start serving


class StartupFailed(Exception):
    """Start-up cannot go on; str() is the one line that says why."""


async def _open_and_migrate(url: str) -> None:
    database = await open_database(url)
    try:
        applied = await migrate(database)
        if applied:
            log.info("database migrated: %s", ", ".join(applied))
    finally:
        await database.close()


def check_database(url: str) -> None:
    """Connect once and bring the schema up to date, so that N workers do not each find out
    (and each print) that the database is unreachable, missing or refuses the role."""
    try:
        asyncio.run(_open_and_migrate(url))
    except DatabaseUnavailable as exc:
        raise StartupFailed(str(exc)) from None


def bind_or_fail(bind: Callable[[str, int], socket.socket], host: str, port: int) -> socket.socket:
    """`bind(host, port)`, its failure (port in use, no permission) naming the port."""
    try:
        return bind(host, port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StartupFailed(f"cannot listen on {host}:{port}: {reason}") from None
