"""`auth: pat` (gateway/pipeline/authn/pat.py): responsible for a bearer token (only a `gwp_` one
beside the JWT authenticator, under `auth: any`); its user proved (docs/routes.md,
`auth` kinds; Personal access tokens)."""

from __future__ import annotations

import pytest

from auth_core.service import AuthCore
from gateway.pipeline.authn.pat import PatAuth
from tests.gateway.pipeline.authn.cases import Case, Issued, answer, expected, ids

CASES = [
    Case("no credential", (), "not responsible"),
    Case("an API key header", ("X-API-Key: {key}",), "not responsible"),
    Case("a gwp_ token with another scheme", ("Authorization: Service {pat}",), "not responsible"),
    Case("a PAT", ("Authorization: Bearer {pat}",), "pat: {user_id}"),
    Case("a websocket's PAT", (), "pat: {user_id}", ws_token="{pat}"),
    Case("an unknown gwp_ token", ("Authorization: Bearer gwp_x",), "401 invalid_token"),
    # Alone on a route, a token sent where the PAT goes is a bad PAT.
    Case("an access token", ("Authorization: Bearer {jwt}",), "401 invalid_token"),
    Case("an API key as a bearer token", ("Authorization: Bearer {key}",), "401 invalid_token"),
]

# Beside the JWT authenticator (`auth: any`), only its own prefix.
PREFIXED_ONLY = [
    Case("no credential", (), "not responsible"),
    Case("an access token", ("Authorization: Bearer {jwt}",), "not responsible"),
    Case("an API key as a bearer token", ("Authorization: Bearer {key}",), "not responsible"),
    Case("a websocket's access token", (), "not responsible", ws_token="{jwt}"),
    Case("a PAT", ("Authorization: Bearer {pat}",), "pat: {user_id}"),
    Case("a websocket's PAT", (), "pat: {user_id}", ws_token="{pat}"),
    Case("an unknown gwp_ token", ("Authorization: Bearer gwp_x",), "401 invalid_token"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
async def test_pat(core: AuthCore, issued: Issued, case: Case) -> None:
    assert await answer(PatAuth(core), case, issued) == expected(case, issued)


@pytest.mark.parametrize("case", PREFIXED_ONLY, ids=ids(PREFIXED_ONLY))
async def test_pat_prefixed_only(core: AuthCore, issued: Issued, case: Case) -> None:
    authenticator = PatAuth(core, prefixed_only=True)
    assert await answer(authenticator, case, issued) == expected(case, issued)
