"""PostgreSQL through an asyncpg pool: the production store, shared by every replica."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg

from auth_core.store.base import Database, DatabaseUnavailable, Row, UniqueViolation

MIGRATION_LOCK_KEY = 0x6761_7465_7761_79  # "gateway": one advisory lock for migrators

_UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, TimeoutError)
# Server errors that mean "not now" rather than "wrong query".
_SERVER_UNAVAILABLE = (
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.CannotConnectNowError,
)


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=self.min_size, max_size=self.max_size, timeout=5
            )
        except (*_UNAVAILABLE, *_SERVER_UNAVAILABLE) as exc:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from None
        except asyncpg.PostgresError as exc:
            # Refused at log-in: a database that does not exist, an unknown role, a wrong
            # password, pg_hba.conf. The server's message names which.
            raise DatabaseUnavailable(f"PostgreSQL refused the connection: {exc}") from None

    def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise DatabaseUnavailable("the database is closed")
        return self._pool

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._acquire() as connection:
            return await _execute(connection, sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._acquire() as connection:
            return await _fetch(connection, sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self._get_pool().acquire(timeout=5) as connection:
                yield connection
        except _UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"PostgreSQL is unavailable: {exc}") from None

    def transaction(self) -> AbstractAsyncContextManager[Database]:
        return self._transaction(lock=False)

    def migration_lock(self) -> AbstractAsyncContextManager[Database]:
        return self._transaction(lock=True)

    @asynccontextmanager
    async def _transaction(self, *, lock: bool) -> AsyncIterator[Database]:
        async with self._acquire() as connection:
            try:
                async with connection.transaction():
                    if lock:
                        await connection.execute(
                            "SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY
                        )
                    yield _PostgresBound(connection)
            except _UNAVAILABLE as exc:
                raise DatabaseUnavailable(f"PostgreSQL is unavailable: {exc}") from None

    async def ping(self) -> None:
        await self.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _execute(connection: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> int:
    try:
        status = await connection.execute(sql, *args)
    except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError) as exc:
        raise UniqueViolation(str(exc)) from None
    except _SERVER_UNAVAILABLE as exc:
        raise DatabaseUnavailable(str(exc)) from None
    # "UPDATE 3", "INSERT 0 1", "DELETE 0"
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


async def _fetch(connection: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> list[Row]:
    try:
        records = await connection.fetch(sql, *args)
    except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError) as exc:
        raise UniqueViolation(str(exc)) from None
    except _SERVER_UNAVAILABLE as exc:
        raise DatabaseUnavailable(str(exc)) from None
    return [dict(record) for record in records]


class _PostgresBound(Database):
    dialect = "postgresql"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: Any) -> int:
        return await _execute(self._connection, sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await _fetch(self._connection, sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    def transaction(self) -> AbstractAsyncContextManager[Database]:
        return _nested(self)

    def migration_lock(self) -> AbstractAsyncContextManager[Database]:
        return _nested(self)

    async def connect(self) -> None:
        return None

    async def ping(self) -> None:
        await self.fetchval("SELECT 1")

    async def close(self) -> None:
        return None


@asynccontextmanager
async def _nested(database: Database) -> AsyncIterator[Database]:
    yield database
