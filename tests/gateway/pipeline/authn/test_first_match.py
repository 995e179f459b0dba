"""`auth: any` (gateway/pipeline/authn/first_match.py): the API key, the PAT and the JWT
authenticators asked in that order, the first responsible answering (docs/routes.md,
`auth` kinds)."""

from __future__ import annotations

import pytest

from auth_core.errors import InvalidToken
from auth_core.service import AuthCore
from gateway.pipeline.authn.base import Authenticator, AuthnResult, NotResponsible
from gateway.pipeline.authn.first_match import FirstMatch, any_credential
from gateway.pipeline.exchange import Exchange
from tests.gateway.pipeline.authn.cases import Case, Issued, answer, expected, ids
from tests.gateway.pipeline.routes_for_stages import ROUTES, request
from tests.support import routed_exchange

CASES = [
    Case("no credential", (), "not responsible"),
    Case("a service token", ("Authorization: Service {service}",), "not responsible"),
    Case(
        "X-API-Key and an access token: the key",
        ("X-API-Key: {key}", "Authorization: Bearer {jwt}"),
        "api_key: {tenant_id}",
    ),
    Case("a key as a bearer token", ("Authorization: Bearer {key}",), "api_key: {tenant_id}"),
    Case("a PAT", ("Authorization: Bearer {pat}",), "pat: {user_id}"),
    Case("an access token", ("Authorization: Bearer {jwt}",), "jwt: {user_id}"),
    Case("a websocket's PAT", (), "pat: {user_id}", ws_token="{pat}"),
    Case("not a token: the JWT's to refuse", ("Authorization: Bearer x",), "401 invalid_token"),
    Case(
        "a bad key beside a good access token: the key answers",
        ("X-API-Key: gwk_x", "Authorization: Bearer {jwt}"),
        "401 invalid_api_key",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
async def test_any_credential(core: AuthCore, issued: Issued, case: Case) -> None:
    assert await answer(any_credential(core), case, issued) == expected(case, issued)


class Asked(Authenticator):
    """Writes down that it was asked; responsible or not as it is told."""

    def __init__(self, name: str, asked: list[str], *, responsible: bool) -> None:
        self.name, self.asked, self.responsible = name, asked, responsible

    def authenticate(self, exchange: Exchange) -> AuthnResult:
        self.asked.append(self.name)
        if not self.responsible:
            return NotResponsible(f"{self.name} wanted")
        raise InvalidToken(f"{self.name} refused")


def exchange() -> Exchange:
    return routed_exchange(request("GET", "/v1/items"), ROUTES)


def test_the_first_responsible_answers_and_the_rest_are_not_asked() -> None:
    asked: list[str] = []
    first = FirstMatch(
        [
            Asked("a", asked, responsible=False),
            Asked("b", asked, responsible=True),
            Asked("c", asked, responsible=True),
        ],
        "a, b or c wanted",
    )
    with pytest.raises(InvalidToken, match="b refused"):
        first.authenticate(exchange())
    assert asked == ["a", "b"]


def test_none_responsible_is_its_own_not_responsible() -> None:
    asked: list[str] = []
    first = FirstMatch(
        [Asked("a", asked, responsible=False), Asked("b", asked, responsible=False)],
        "a or b wanted",
    )
    result = first.authenticate(exchange())
    assert isinstance(result, NotResponsible)
    assert result.needed == "a or b wanted"
    assert asked == ["a", "b"]
