"""`auth: api_key` (gateway/pipeline/authn/api_key.py): responsible for `X-API-Key` and for a
bearer `gwk_` token; the key's tenant proved from an address its lists allow (docs/routes.md, `auth`
kinds; API keys)."""

from __future__ import annotations

import pytest

from auth_core.service import AuthCore
from gateway.pipeline.authn.api_key import ApiKeyAuth
from tests.gateway.pipeline.authn.cases import OUTSIDE, Case, Issued, answer, expected, ids

CASES = [
    Case("no credential", (), "not responsible"),
    Case("an access token", ("Authorization: Bearer {jwt}",), "not responsible"),
    Case("a PAT", ("Authorization: Bearer {pat}",), "not responsible"),
    Case("a service token", ("Authorization: Service {service}",), "not responsible"),
    Case("a key in X-API-Key", ("X-API-Key: {key}",), "api_key: {tenant_id}"),
    Case("a key as a bearer token", ("Authorization: Bearer {key}",), "api_key: {tenant_id}"),
    Case("a websocket's key", (), "api_key: {tenant_id}", ws_token="{key}"),
    Case(
        "X-API-Key beside an access token",
        ("X-API-Key: {key}", "Authorization: Bearer {jwt}"),
        "api_key: {tenant_id}",
    ),
    Case("a key from elsewhere", ("X-API-Key: {key}",), "403 ip_not_allowed", peer=OUTSIDE),
    # The header names the kind, whatever it holds.
    Case("X-API-Key empty", ("X-API-Key:",), "401 missing_credentials"),
    Case("X-API-Key not a key", ("X-API-Key: {pat}",), "401 invalid_api_key"),
    Case("an unknown gwk_ bearer token", ("Authorization: Bearer gwk_x",), "401 invalid_api_key"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
async def test_api_key(core: AuthCore, issued: Issued, case: Case) -> None:
    assert await answer(ApiKeyAuth(core), case, issued) == expected(case, issued)
