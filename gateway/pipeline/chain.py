"""Runs the stages in order, then the terminal step that produces the response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from gateway.http.response import Response
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage

Terminal = Callable[[Exchange], Awaitable[Response | None]]


class Chain:
    """The pipeline: stages, built once, then the forwarder."""

    def __init__(self, stages: Sequence[Stage], terminal: Terminal) -> None:
        self.stages = tuple(stages)
        self.terminal = terminal

    async def run(self, exchange: Exchange) -> Response | None:
        for stage in self.stages:
            response = await stage(exchange)
            if response is not None:
                return response
        return await self.terminal(exchange)
