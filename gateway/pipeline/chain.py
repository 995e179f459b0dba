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

    def run(self, exchange: Exchange) -> Response | Awaitable[Response | None]:
        """A response when a stage answered at once; otherwise what to await for one (the
        chain goes on as a coroutine only once a stage has to wait)."""
        stages = self.stages
        for index in range(len(stages)):
            result = stages[index](exchange)
            if result is None:
                continue
            if isinstance(result, Response):
                return result
            return self._resume(result, index + 1, exchange)
        return self.terminal(exchange)

    async def _resume(
        self, pending: Awaitable[Response | None], start: int, exchange: Exchange
    ) -> Response | None:
        result = await pending
        if result is not None:
            return result
        for stage in self.stages[start:]:
            step = stage(exchange)
            if step is None:
                continue
            answer = step if isinstance(step, Response) else await step
            if answer is not None:
                return answer
        return await self.terminal(exchange)
