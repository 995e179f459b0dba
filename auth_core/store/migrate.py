"""Versioned migrations, applied in order, once, however many processes start together.

Each file `migrations/NNNN_name.sql` is one version. They run inside the database's migration
lock (PostgreSQL: an advisory transaction lock; SQLite: the write lock of BEGIN IMMEDIATE), and
the versions applied are recorded in `schema_migrations` in the same transaction, so a process
that waited for the lock finds the work done.
"""

from __future__ import annotations

import re
import time
from importlib import resources

from auth_core.store.base import Database

_SERIAL = {
    "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgresql": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
}
_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration shipped, in order."""
    found = []
    for entry in resources.files("auth_core.store.migrations").iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


def _statements(sql: str, dialect: str) -> list[str]:
    text = sql.replace("{{serial}}", _SERIAL[dialect])
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


async def migrate(database: Database) -> list[str]:
    """Apply what is missing; the names of the migrations applied now."""
    applied: list[str] = []
    async with database.migration_lock() as db:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {row["version"] for row in await db.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version in done:
                continue
            for statement in _statements(sql, database.dialect):
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                version,
                name,
                time.time(),
            )
            applied.append(name)
    return applied
