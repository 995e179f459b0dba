"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession

from tests.support import Upstream, upstream_server


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
