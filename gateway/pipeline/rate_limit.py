"""Per-route rate limits (`rate_limit` in routes.yaml): 429 `rate_limited` with `Retry-After`
and `RateLimit-*`, and the `RateLimit-*` headers on every answer that passed.

Checked after authentication, so a limit can count by user, tenant or credential; a caller
without the one a rule names is counted by its client address. Without Redis the check runs
synchronously in this worker; with Redis it is one script a request, shared by every replica.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from auth_core import headers as h
from auth_core.limits import Limiter, Rate, Verdict
from gateway.errors import RateLimited
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult
from gateway.routing.table import RateRule, Route
from metrics.catalog import Catalog


def subject(rule: RateRule, exchange: Exchange) -> str:
    """What the rule counts this request against."""
    principal = exchange.principal
    if principal is not None:
        if rule.key == "user" and principal.user_id is not None:
            return "user:" + principal.user_id
        if rule.key == "tenant" and principal.tenant_id is not None:
            return "tenant:" + principal.tenant_id
        if rule.key == "credential":
            credential = principal.credential_id or principal.session_id
            if credential is not None:
                return "credential:" + credential
    return "ip:" + exchange.client_ip


def limit_key(route: Route, rule: RateRule, exchange: Exchange) -> str:
    rate = rule.rate
    per = f"{rate.per:g}"  # apart: see accesslog.py on format specs in compiled f-strings
    return f"route:{route.name}:{rule.key}:{rate.limit}/{per}:{subject(rule, exchange)}"


def headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    """RateLimit-Limit, -Remaining, -Reset (whole seconds, rounded up) and -Policy."""
    reset = math.ceil(verdict.reset)
    return [
        (h.W_RATELIMIT_LIMIT, str(verdict.limit).encode()),
        (h.W_RATELIMIT_REMAINING, str(verdict.remaining).encode()),
        (h.W_RATELIMIT_RESET, str(reset).encode()),
        (h.W_RATELIMIT_POLICY, verdict.policy.encode()),
    ]


def refusal(verdict: Verdict) -> RateLimited:
    return RateLimited(
        "too many requests; retry after the time in Retry-After",
        verdict.retry_after,
        headers={name.decode(): value.decode() for name, value in headers(verdict)},
    )


class RateLimit(Stage):
    def __init__(self, limiter: Limiter, catalog: Catalog) -> None:
        self.limiter = limiter
        self.catalog = catalog

    def applies(self, route: Route) -> bool:
        return bool(route.rate_limits)

    def __call__(self, exchange: Exchange) -> StageResult:
        route = exchange.route
        assert route is not None
        rules = route.rate_limits
        if not rules:
            return None
        keys = [limit_key(route, rule, exchange) for rule in rules]
        rates = [rule.rate for rule in rules]
        if self.limiter.link is None:
            self._apply(exchange, route, self.limiter.local.check(keys, rates))
            return None
        return self._shared(exchange, route, keys, rates)

    async def _shared(
        self, exchange: Exchange, route: Route, keys: Sequence[str], rates: Sequence[Rate]
    ) -> None:
        self._apply(exchange, route, await self.limiter.check(keys, rates))

    def _apply(self, exchange: Exchange, route: Route, verdict: Verdict) -> None:
        if not verdict.allowed:
            self.catalog.rate_limited.inc((route.name,))
            raise refusal(verdict)
        exchange.response_headers = [*exchange.response_headers, *headers(verdict)]
