"""The one interface every pipeline stage has.

A stage's job is usually done at once (match a route, check a cached credential), and
sometimes needs to wait (a database look-up on a cache miss). Making every stage a coroutine
would cost each request one coroutine a stage whether it waits or not (about 0.7 us each on
the bench machine, a tenth of the gateway's own time with seven stages), so a stage answers
synchronously and hands back an awaitable only when it has to wait.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable

from mypy_extensions import mypyc_attr

from gateway.http.response import Response
from gateway.pipeline.exchange import Exchange
from gateway.routing.table import Route

# None: go on; a Response: answer it now; an awaitable of either: wait, then the same.
StageResult = Response | None | Awaitable[Response | None]


# An extension point: plain Python subclasses work in the compiled build too (mypyc refuses
# them otherwise). Without mypyc, mypyc_attr does nothing.
@mypyc_attr(allow_interpreted_subclasses=True)
class Stage(ABC):
    """One job on the request path."""

    @abstractmethod
    def __call__(self, exchange: Exchange) -> StageResult:
        """Do this stage's job on `exchange`, or raise a GatewayError to refuse."""

    def applies(self, route: Route) -> bool:
        """Whether this stage has anything to do for requests of `route` (body stages only:
        the chain leaves it out of that route's list otherwise)."""
        return True
