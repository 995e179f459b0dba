"""Migrations on both backends, applied once even when several processes start together."""

from __future__ import annotations

import asyncio

import pytest

from auth_core.store import UniqueViolation, open_database
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


async def test_tenant_names_made_unique_keep_the_oldest(database_url: str) -> None:
    """Migration 0004 on a database that had tenant names twice (in any case): the oldest keeps
    its name, every later one gets its id appended, and no name can be taken twice again."""
    database = await open_database(database_url)
    try:
        await migrate(database)
        # Back to before 0004, with duplicates written as the older code allowed them.
        await database.execute("DROP INDEX tenants_name")
        await database.execute("DELETE FROM schema_migrations WHERE version = 4")
        for tenant_id, name, created_at in (
            ("ten_b", "Acme", 2.0),
            ("ten_a", "Acme", 1.0),
            ("ten_c", "ACME", 3.0),
            ("ten_d", "Other", 4.0),
        ):
            await database.execute(
                "INSERT INTO tenants (id, name, origins, ip_whitelist, created_at, updated_at) "
                "VALUES ($1, $2, '[]', '[]', $3, $3)",
                tenant_id,
                name,
                created_at,
            )
        assert await migrate(database) == ["0004_tenant_names.sql"]
        rows = await database.fetch("SELECT id, name FROM tenants ORDER BY id")
        assert [(row["id"], row["name"]) for row in rows] == [
            ("ten_a", "Acme"),
            ("ten_b", "Acme (ten_b)"),
            ("ten_c", "ACME (ten_c)"),
            ("ten_d", "Other"),
        ]
        with pytest.raises(UniqueViolation):
            await database.execute(
                "INSERT INTO tenants (id, name, origins, ip_whitelist, created_at, updated_at) "
                "VALUES ('ten_e', 'other', '[]', '[]', 5, 5)"
            )
    finally:
        await database.close()
