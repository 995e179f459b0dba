"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession
from redis.exceptions import RedisError

from tests.support import TcpRelay, Upstream, upstream_server


def pytest_sessionstart(session: pytest.Session) -> None:
    """scripts/test runs the suite a second time against the compiled build (setup.py): make
    sure that run imports the build, not the sources beside the tests."""
    if os.environ.get("GATEWAY_TEST_COMPILED") != "1":
        return
    import gateway
    from gateway.pipeline import chain

    if not gateway.compiled():
        raise pytest.UsageError(
            f"GATEWAY_TEST_COMPILED=1 but the sources were imported: {chain.__file__}"
        )


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """An echo upstream on loopback."""
    async with upstream_server() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[ClientSession]:
    """A real HTTP client, with no automatic decompression or cookie jar surprises."""
    async with ClientSession(auto_decompress=False) as session:
        yield session


# -- real databases ----------------------------------------------------------------------------

POSTGRES_ADMIN_DSN = os.environ.get(
    "GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def _unavailable(what: str, error: BaseException) -> None:
    """Under CI a missing service fails the test; elsewhere it is skipped with the reason."""
    message = f"{what} is not reachable: {error}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _execute(dsn: str, statement: str) -> None:
    """One administrative statement (outside any test's event loop) on its own connection."""

    async def execute() -> None:
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(execute())


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of this test run's own, dropped at the end."""
    name = f"gateway_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        _execute(POSTGRES_ADMIN_DSN, f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _unavailable("PostgreSQL", exc)
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    _execute(POSTGRES_ADMIN_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A schema of this test's own in the run's database, as a database URL."""
    database = request.getfixturevalue("postgres_database")
    schema = f"t_{secrets.token_hex(6)}"
    _execute(database, f"CREATE SCHEMA {schema}")
    yield f"{database}?search_path={schema}"
    _execute(database, f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
async def postgres_relay(postgres_url: str) -> AsyncIterator[tuple[TcpRelay, str]]:
    """A relay to the test's PostgreSQL that the test can cut, and the database URL through
    it."""
    relay = TcpRelay("127.0.0.1", 5432)
    await relay.start()
    try:
        yield relay, postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}", 1)
    finally:
        await relay.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gateway.db"
    return str(request.getfixturevalue("postgres_url"))


REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted after."""
    prefix = f"gwtest:{os.getpid()}:{secrets.token_hex(4)}:"

    async def reachable() -> None:
        client = aioredis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            await client.ping()
        finally:
            await client.aclose()

    async def clean() -> None:
        client = aioredis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            keys = [key async for key in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    try:
        asyncio.run(reachable())
    except (OSError, RedisError, TimeoutError) as exc:
        _unavailable("Redis", exc)
    yield prefix
    asyncio.run(clean())
