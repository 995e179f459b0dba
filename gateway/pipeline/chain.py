"""Runs the stages in order, then the terminal step that produces the response.

The stages come in two parts: the head, which runs for every request and ends by matching a
route, and the body, which runs for the route matched. Of the body only the stages that apply
to the route run (`Stage.applies`: a websocket stage on websocket routes, authentication on
routes that ask for some, a rate limit where one is set...): the list is worked out once per
route and kept, so a request pays no call for what its route does not use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from gateway.http.response import Response
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage
from gateway.routing.table import Route

Terminal = Callable[[Exchange], Awaitable[Response | None]]
MAX_ROUTES_KEPT: Final = 4096  # reloads make new Route objects; the old ones' lists go eventually


class Chain:
    """The pipeline: stages, built once, then the forwarder."""

    def __init__(self, head: Sequence[Stage], body: Sequence[Stage], terminal: Terminal) -> None:
        self.head = tuple(head)
        self.body = tuple(body)
        self.terminal = terminal
        self._for_route: dict[int, tuple[Route, tuple[Stage, ...]]] = {}

    def stages_for(self, route: Route) -> tuple[Stage, ...]:
        """The body stages that apply to `route` (worked out once per route object)."""
        kept = self._for_route.get(id(route))
        if kept is not None and kept[0] is route:
            return kept[1]
        stages = tuple(stage for stage in self.body if stage.applies(route))
        if len(self._for_route) >= MAX_ROUTES_KEPT:
            self._for_route.clear()
        self._for_route[id(route)] = (route, stages)
        return stages

    def run(self, exchange: Exchange) -> Response | Awaitable[Response | None]:
        """A response when a stage answered at once; otherwise what to await for one (the
        chain goes on as a coroutine only once a stage has to wait)."""
        # `stage.__call__(exchange)`, not `stage(exchange)`: compiled with mypyc, the first is a
        # call through the class's method table, the second one through Python's call protocol
        # (about 300 instructions more a stage, ten stages a request on `auth: jwt`).
        head = self.head
        for stage in head:
            result = stage.__call__(exchange)
            if result is not None:
                if isinstance(result, Response):
                    return result
                return self._resume(result, exchange, head[head.index(stage) + 1 :], None)
        route = exchange.route
        assert route is not None, "the head ends by matching a route"
        body = self.stages_for(route)
        for stage in body:
            result = stage.__call__(exchange)
            if result is not None:
                if isinstance(result, Response):
                    return result
                return self._resume(result, exchange, (), body[body.index(stage) + 1 :])
        return self.terminal(exchange)

    async def _resume(
        self,
        pending: Awaitable[Response | None],
        exchange: Exchange,
        head: Sequence[Stage],
        body: Sequence[Stage] | None,
    ) -> Response | None:
        result = await pending
        if result is not None:
            return result
        for stage in head:
            answer = await _settled(stage.__call__(exchange))
            if answer is not None:
                return answer
        if body is None:
            route = exchange.route
            assert route is not None, "the head ends by matching a route"
            body = self.stages_for(route)
        for stage in body:
            answer = await _settled(stage.__call__(exchange))
            if answer is not None:
                return answer
        return await self.terminal(exchange)


async def _settled(
    step: Response | Awaitable[Response | None] | None,
) -> Response | None:
    if step is None or isinstance(step, Response):
        return step
    return await step
