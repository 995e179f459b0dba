"""The one small interface storage sits behind, with a SQLite and a PostgreSQL implementation.

Queries are written once, in the SQL both dialects share, with `$1, $2, ...` placeholders
(asyncpg's own; SQLite reads `$1` as a named parameter "1"). Timestamps are Unix seconds
(DOUBLE PRECISION), ids are text, booleans are BOOLEAN (SQLite stores 0/1: read them with
bool()). Nothing above `auth_core.store` knows which database it has.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

Row = Mapping[str, Any]


class DatabaseUnavailable(Exception):
    """The database cannot be reached or answered with an error of its own (not ours)."""


class UniqueViolation(Exception):
    """A write broke a uniqueness rule (an e-mail taken, a key already there)."""


class Database(ABC):
    """Run statements; `transaction()` gives a Database bound to one transaction."""

    dialect: str  # "sqlite" or "postgresql"

    @abstractmethod
    async def connect(self) -> None:
        """Open connections (DatabaseUnavailable if that fails)."""

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; the number of rows it changed."""

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Every row of a query."""

    @abstractmethod
    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """The first row of a query, or None."""

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()))

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Database]:
        """All statements through the yielded Database commit together or not at all."""

    @abstractmethod
    def migration_lock(self) -> AbstractAsyncContextManager[Database]:
        """A transaction that holds the database-wide migration lock (one migrator at once,
        whatever the number of workers and replicas starting together)."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


def json_list(values: Sequence[str] | None) -> str | None:
    """A list column's stored form (JSON text), None kept as NULL."""
    return None if values is None else json.dumps(list(values))
