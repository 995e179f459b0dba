"""SQLite, the embedded default: one connection a worker process through aiosqlite, in WAL
mode so the workers of one host share the file; writes wait for each other (busy timeout)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from auth_core.store.base import Database, DatabaseUnavailable, Row, UniqueViolation

BUSY_TIMEOUT_MS = 10_000


def _params(args: tuple[Any, ...]) -> dict[str, Any]:
    return {str(index): value for index, value in enumerate(args, 1)}


async def _enable_wal(connection: aiosqlite.Connection) -> None:
    """Switch to WAL. Workers opening a new file together race for it, and the switch takes
    an exclusive lock that SQLite's busy handler does not wait for: retry for a while."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() > deadline:
                raise
            await asyncio.sleep(0.01)


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: aiosqlite.Connection | None = None
        # One connection: statements of a transaction must not interleave with others.
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open {self.path}: {exc}") from None
        try:
            connection.row_factory = sqlite3.Row
            await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await _enable_wal(connection)
            await connection.execute("PRAGMA synchronous = FULL")  # acknowledged is on disk
            await connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            await connection.close()
            raise DatabaseUnavailable(f"cannot open {self.path}: {exc}") from None
        self._connection = connection

    def _conn(self) -> aiosqlite.Connection:
        if self._connection is None:
            raise DatabaseUnavailable("the database is closed")
        return self._connection

    # Each await below is a round trip to aiosqlite's thread (and a wake-up of this loop): a
    # query is one (execute_fetchall), a statement two (execute, close).

    async def _run(self, sql: str, args: tuple[Any, ...]) -> int:
        try:
            cursor = await self._conn().execute(sql, _params(args))
            count = cursor.rowcount
            await cursor.close()
        except sqlite3.IntegrityError as exc:
            raise UniqueViolation(str(exc)) from None
        except sqlite3.OperationalError as exc:  # locked, busy, disk full, I/O
            raise DatabaseUnavailable(str(exc)) from None
        return count

    async def _query(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        try:
            rows = await self._conn().execute_fetchall(sql, _params(args))
        except sqlite3.IntegrityError as exc:
            raise UniqueViolation(str(exc)) from None
        except sqlite3.OperationalError as exc:
            raise DatabaseUnavailable(str(exc)) from None
        return [dict(row) for row in rows]

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._lock:
            return await self._run(sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._lock:
            return await self._query(sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    def transaction(self) -> AbstractAsyncContextManager[Database]:
        return self._transaction("BEGIN IMMEDIATE")

    def migration_lock(self) -> AbstractAsyncContextManager[Database]:
        # BEGIN IMMEDIATE takes the file's write lock: other processes wait on busy_timeout.
        return self._transaction("BEGIN IMMEDIATE")

    @asynccontextmanager
    async def _transaction(self, begin: str) -> AsyncIterator[Database]:
        async with self._lock:
            await self._run(begin, ())
            bound = _SQLiteBound(self)
            try:
                yield bound
            except BaseException:
                await self._run("ROLLBACK", ())
                raise
            else:
                await self._run("COMMIT", ())

    async def ping(self) -> None:
        await self.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


class _SQLiteBound(Database):
    """The statements of one transaction (the lock is already held)."""

    dialect = "sqlite"

    def __init__(self, owner: SQLiteDatabase) -> None:
        self._owner = owner

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._owner._run(sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._owner._query(sql, args)

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
