"""`auth: service` (gateway/pipeline/authn/service.py): responsible for `Authorization: Service
<token>`; the service token proved (docs/routes.md, `auth` kinds)."""

from __future__ import annotations

import pytest

from auth_core.service import AuthCore
from gateway.pipeline.authn.service import ServiceAuth
from tests.gateway.pipeline.authn.cases import Case, Issued, answer, expected, ids

CASES = [
    Case("no credential", (), "not responsible"),
    Case("an access token", ("Authorization: Bearer {jwt}",), "not responsible"),
    Case(
        "a service token as a bearer token", ("Authorization: Bearer {service}",), "not responsible"
    ),
    Case("the scheme without a token", ("Authorization: Service",), "not responsible"),
    Case("a websocket's token", (), "not responsible", ws_token="{service}"),
    Case("a service token", ("Authorization: Service {service}",), "service: {service_id}"),
    Case("the scheme in capitals", ("Authorization: SERVICE {service}",), "service: {service_id}"),
    Case("an unknown gws_ token", ("Authorization: Service gws_x",), "401 invalid_token"),
    Case("a PAT with the service scheme", ("Authorization: Service {pat}",), "401 invalid_token"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
async def test_service(core: AuthCore, issued: Issued, case: Case) -> None:
    assert await answer(ServiceAuth(core), case, issued) == expected(case, issued)
