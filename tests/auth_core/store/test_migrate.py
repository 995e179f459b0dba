"""Migrations on both backends, applied once even when several processes start together."""

from __future__ import annotations

import asyncio

from auth_core.store import open_database
from auth_core.store.migrate import migrate, migrations


async def test_migrations_apply_once(database_url: str) -> None:
    database = await open_database(database_url)
    try:
        first = await migrate(database)
        second = await migrate(database)
        versions = await database.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await database.close()
    assert first == [name for _, name, _ in migrations()]
    assert second == []
    assert [row["version"] for row in versions] == [version for version, _, _ in migrations()]


async def test_concurrent_migrators_apply_each_migration_once(database_url: str) -> None:
    databases = [await open_database(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(database) for database in databases))
        count = await databases[0].fetchval("SELECT COUNT(*) FROM schema_migrations")
    finally:
        for database in databases:
            await database.close()
    applied = [name for result in results for name in result]
    assert sorted(applied) == sorted(name for _, name, _ in migrations())
    assert count == len(migrations())
