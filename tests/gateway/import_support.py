"""What the import tests share: a foreign PostgreSQL database of a test's own (the old
service's), and `gateway` run as an operator runs it against the gateway's database."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import POSTGRES_ADMIN_DSN, _execute, _unavailable
from tests.support import command_environment, gateway_command

JWT_SECRET = "t1:" + "j" * 48
SERVICE_SECRET = "s1:" + "s" * 48


@pytest.fixture
def foreign_url() -> Iterator[str]:
    """A database of this test's own on the real PostgreSQL, as the old service's: dropped at
    the end."""
    name = f"foreign_{secrets.token_hex(6)}"
    try:
        _execute(POSTGRES_ADMIN_DSN, f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _unavailable("PostgreSQL", exc)
    yield f"{POSTGRES_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    _execute(POSTGRES_ADMIN_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def gateway_cli(
    directory: Path, database_url: str, *args: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS` on `database_url` (either backend), with `variables` set."""
    environment = command_environment(
        directory,
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_JWT_SECRET=JWT_SECRET,
        GATEWAY_SERVICE_SECRET=SERVICE_SECRET,
        **variables,
    )
    return gateway_command(directory, environment, *args)
