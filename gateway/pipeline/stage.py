"""The one interface every pipeline stage has."""

from __future__ import annotations

from abc import ABC, abstractmethod

from gateway.http.response import Response
from gateway.pipeline.exchange import Exchange


class Stage(ABC):
    """One job on the request path."""

    @abstractmethod
    async def __call__(self, exchange: Exchange) -> Response | None:
        """Do this stage's job: None to go on, a response to answer now, or raise a
        GatewayError to refuse."""
