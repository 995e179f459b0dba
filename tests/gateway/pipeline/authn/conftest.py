"""One credential of every kind, issued by the real auth core of tests/gateway/pipeline."""

from __future__ import annotations

import pytest

from auth_core.service import AuthCore
from tests.gateway.pipeline.authn.cases import Issued, issue


@pytest.fixture
async def issued(core: AuthCore) -> Issued:
    return await issue(core)
