"""Fixtures of the auth core's tests: a migrated store, a started AuthCore.

Everything that takes `database_url` runs twice: on a SQLite file and on a PostgreSQL schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from auth_core.service import AuthCore
from auth_core.store import Database, open_database
from auth_core.store.migrate import migrate
from auth_core.store.records import Store
from tests import support


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A connected, migrated database (either backend)."""
    db = await open_database(database_url)
    await migrate(db)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def store(database: Database) -> Store:
    return Store(database)


@pytest.fixture
async def core(database_url: str, tmp_path: Path) -> AsyncIterator[AuthCore]:
    """A started auth core on its own database, mail going to `tmp_path/outbox`."""
    auth = AuthCore(support.auth_settings(tmp_path, database_url=database_url))
    await auth.start()
    try:
        yield auth
    finally:
        await auth.close()
