"""`auth: jwt` (gateway/pipeline/authn/jwt.py): responsible for every bearer token; the access
token's user proved, anything else refused (docs/routes.md, `auth` kinds)."""

from __future__ import annotations

import pytest

from auth_core.service import AuthCore
from gateway.pipeline.authn.jwt import JwtAuth
from tests.gateway.pipeline.authn.cases import Case, Issued, answer, expected, ids

CASES = [
    Case("no credential", (), "not responsible"),
    Case("another scheme", ("Authorization: Basic dXNlcjpwYXNz",), "not responsible"),
    Case("a bearer scheme without a token", ("Authorization: Bearer",), "not responsible"),
    Case("a service token", ("Authorization: Service {service}",), "not responsible"),
    Case("an API key header only", ("X-API-Key: {key}",), "not responsible"),
    Case("an access token", ("Authorization: Bearer {jwt}",), "jwt: {user_id}"),
    Case("the scheme in capitals", ("Authorization: BEARER {jwt}",), "jwt: {user_id}"),
    Case("a websocket's token", (), "jwt: {user_id}", ws_token="{jwt}"),
    Case("not a token", ("Authorization: Bearer nonsense",), "401 invalid_token"),
    # Every bearer token is the JWT's to answer for: under `auth: any` the kinds with a
    # prefix are asked first (test_first_match.py).
    Case("a PAT", ("Authorization: Bearer {pat}",), "401 invalid_token"),
    Case("an API key as a bearer token", ("Authorization: Bearer {key}",), "401 invalid_token"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
async def test_jwt(core: AuthCore, issued: Issued, case: Case) -> None:
    assert await answer(JwtAuth(core), case, issued) == expected(case, issued)
