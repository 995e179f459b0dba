"""Refuses a banned client address (auth_core.bans) before anything else is done for it:
429 `rate_limited` with `Retry-After` set to what is left of the ban."""

from __future__ import annotations

import math
import time

from auth_core.revocation import RevocationSet
from gateway.errors import GatewayError
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult


class RefuseBanned(Stage):
    def __init__(self, revoked: RevocationSet) -> None:
        self.revoked = revoked

    def __call__(self, exchange: Exchange) -> StageResult:
        if not self.revoked.bans:  # the usual case: one attribute and a truth test
            return None
        left = self.revoked.banned_for(exchange.client_ip, time.time())
        if left:
            raise GatewayError(
                "this address is banned for a while after repeated failed credentials",
                status=429,
                code="rate_limited",
                headers={"Retry-After": str(max(1, math.ceil(left)))},
            )
        return None
