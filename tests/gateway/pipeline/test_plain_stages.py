"""Stages and authenticators are extension points: plain Python subclasses, defined here, run in
a real gateway, in the pure package and in the compiled build alike (there Stage, Authenticator
and FirstMatch are compiled and these classes are not)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import ClientSession

from auth_core.errors import InvalidToken
from gateway.errors import IpNotAllowed
from gateway.pipeline.authn.base import Authenticator, AuthnResult, NotResponsible
from gateway.pipeline.authn.first_match import FirstMatch
from gateway.pipeline.authn.jwt import JwtAuth
from gateway.pipeline.chain import Chain
from gateway.pipeline.client_address import ResolveClientAddress
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.match_route import MatchRoute
from gateway.pipeline.parse_target import ParseTarget
from gateway.pipeline.stage import Stage, StageResult
from gateway.routing.table import AuthKind, Route
from tests.support import Upstream, routes, running_gateway


class Stamp(Stage):
    """Answers at once: adds a header to the client's response."""

    def __call__(self, exchange: Exchange) -> StageResult:
        exchange.response_headers = (*exchange.response_headers, (b"X-Stamped", b"plain"))
        return None


class RefuseAfterWaiting(Stage):
    """Has to wait, then refuses with a typed error; only on the route named `guarded`."""

    def applies(self, route: Route) -> bool:
        return route.name == "guarded"

    def __call__(self, exchange: Exchange) -> StageResult:
        return self._refuse()

    async def _refuse(self) -> None:
        await asyncio.sleep(0)
        raise IpNotAllowed("a plain Python stage refused this")


class LetInByHeader(Authenticator):
    """Responsible for a request with `X-Let-In`: lets it in when it says `yes`, refuses it
    with a typed 401 otherwise."""

    def authenticate(self, exchange: Exchange) -> AuthnResult:
        said = exchange.request.header(b"x-let-in")
        if said is None:
            return NotResponsible("say X-Let-In: yes")
        if said != b"yes":
            raise InvalidToken("X-Let-In says no")
        exchange.auth_method = "let-in"
        return None


async def test_a_plain_python_stage_runs_in_the_chain(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    table = routes(
        {"echo": [upstream.url]},
        "{name: open, path: /open, upstream: echo, auth: none}",
        "{name: guarded, path: /guarded, upstream: echo, auth: none}",
    )
    async with running_gateway(table, tmp_path) as gw:
        app = gw.worker.gateway
        assert app is not None
        old = app.chain
        app.chain = app.dispatcher.chain = Chain(
            [ResolveClientAddress(app.resolver), ParseTarget(), MatchRoute()],
            [Stamp(), RefuseAfterWaiting(), *old.body],
            old.terminal,
        )
        async with client.get(gw.url + "/open") as response:
            assert response.status == 200
            assert response.headers["X-Stamped"] == "plain"
        assert len(upstream.seen) == 1
        async with client.get(gw.url + "/guarded") as response:
            assert response.status == 403
            assert response.headers["Content-Type"] == "application/problem+json"
            body = await response.json(content_type=None)
        assert body["error"] == "ip_not_allowed"
        assert body["detail"] == "a plain Python stage refused this"
        assert len(upstream.seen) == 1  # the refused request never reached the upstream


async def test_a_plain_python_authenticator_serves_a_route_kind(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    table = routes(
        {"echo": [upstream.url]}, "{name: private, path: /private, upstream: echo, auth: jwt}"
    )
    async with running_gateway(table, tmp_path) as gw:
        app = gw.worker.gateway
        assert app is not None
        app.authenticate.authenticators[AuthKind.JWT] = LetInByHeader()
        async with client.get(gw.url + "/private") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="gateway"'
            body = await response.json(content_type=None)
        assert (body["error"], body["detail"]) == ("missing_credentials", "say X-Let-In: yes")
        async with client.get(gw.url + "/private", headers={"X-Let-In": "no"}) as response:
            assert response.status == 401
            body = await response.json(content_type=None)
        assert (body["error"], body["detail"]) == ("invalid_token", "X-Let-In says no")
        assert upstream.seen == []
        async with client.get(gw.url + "/private", headers={"X-Let-In": "yes"}) as response:
            assert response.status == 200
        received = {name.lower(): value for name, value in upstream.seen[0]["headers"]}
        assert received["x-auth-method"] == "let-in"


async def test_a_plain_python_authenticator_goes_first_among_the_compiled_ones(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    table = routes(
        {"echo": [upstream.url]}, "{name: either, path: /either, upstream: echo, auth: any}"
    )
    async with running_gateway(table, tmp_path) as gw:
        app = gw.worker.gateway
        assert app is not None
        app.authenticate.authenticators[AuthKind.ANY] = FirstMatch(
            (LetInByHeader(), JwtAuth(gw.core)), "say X-Let-In, or send a token"
        )
        async with client.get(gw.url + "/either") as response:
            assert response.status == 401
            body = await response.json(content_type=None)
        assert (body["error"], body["detail"]) == (
            "missing_credentials",
            "say X-Let-In, or send a token",
        )
        # Not the plain one's: the JWT authenticator after it answers.
        bearer = {"Authorization": "Bearer not-a-token"}
        async with client.get(gw.url + "/either", headers=bearer) as response:
            assert response.status == 401
            body = await response.json(content_type=None)
        assert body["error"] == "invalid_token"
        assert upstream.seen == []
        async with client.get(gw.url + "/either", headers={"X-Let-In": "yes", **bearer}) as r:
            assert r.status == 200
        received = {name.lower(): value for name, value in upstream.seen[0]["headers"]}
        assert received["x-auth-method"] == "let-in"
