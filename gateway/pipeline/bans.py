"""Refuses a banned client address (auth_core.bans) before anything else is done for it:
429 `rate_limited` with `Retry-After` set to what is left of the ban, and the time it ends
in the detail. The operational endpoints (`/health`, `/ready`, `/metrics`) are answered by
the stage before this one, so a banned address (a load balancer's, a monitor's behind NAT)
still sees them."""

from __future__ import annotations

import math
import time

from auth_core.revocation import RevocationSet
from gateway.errors import RateLimited
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult


class RefuseBanned(Stage):
    def __init__(self, revoked: RevocationSet) -> None:
        self.revoked = revoked

    def __call__(self, exchange: Exchange) -> StageResult:
        if not self.revoked.bans:  # the usual case: one attribute and a truth test
            return None
        now = time.time()
        left = self.revoked.banned_for(exchange.client_ip, now)
        if left:
            seconds = max(1, math.ceil(left))
            ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + seconds))
            raise RateLimited(
                f"this address is banned until {ends} (in {seconds} s) after repeated failed "
                "credentials",
                seconds,
            )
        return None
