"""A real auth core for the stages that consult it (tenants' origins): SQLite in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from auth_core.service import AuthCore
from tests.support import auth_settings


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[AuthCore]:
    auth = AuthCore(auth_settings(tmp_path))
    await auth.start()
    try:
        yield auth
    finally:
        await auth.close()


@pytest.fixture
async def cookie_core(tmp_path: Path) -> AsyncIterator[AuthCore]:
    """The same with cookie sessions on (GATEWAY_SESSION_COOKIES)."""
    auth = AuthCore(auth_settings(tmp_path, session_cookies=True))
    await auth.start()
    try:
        yield auth
    finally:
        await auth.close()
