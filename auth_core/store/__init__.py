"""Storage of the auth core: one small interface (`base.Database`), two implementations
(`sqlite`, `postgres`), versioned migrations, and the records on top (`records`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from auth_core.store.base import Database, DatabaseUnavailable, Row, UniqueViolation

__all__ = ["Database", "DatabaseUnavailable", "Row", "UniqueViolation", "open_database"]


async def open_database(url: str) -> Database:
    """A connected Database for `sqlite:///path` or `postgresql://...`."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from auth_core.store.sqlite import SQLiteDatabase

        path = url[len("sqlite://") :]
        path = path[1:] if path.startswith("/") else path  # sqlite:///x -> x, sqlite:////x -> /x
        database: Database = SQLiteDatabase(path or ":memory:")
        await database.connect()
        return database
    if scheme in ("postgresql", "postgres"):
        from auth_core.store.postgres import PostgresDatabase

        database = PostgresDatabase(url)
        await database.connect()
        return database
    raise ValueError(f"unsupported database URL scheme {scheme!r}")
