"""What the auth core counts on the hot path: plain integers, a few nanoseconds an increment.
The gateway copies them into its metrics (gateway_auth_cache_*, gateway_token_validations_total)
when it publishes or serves /metrics."""

from __future__ import annotations

from collections import Counter

TOKEN_HIT = ("token", "hit")
TOKEN_MISS = ("token", "miss")
CREDENTIAL_HIT = ("credential", "hit")
CREDENTIAL_MISS = ("credential", "miss")
CREDENTIAL_SHARED_HIT = ("credential", "shared_hit")  # a miss here, found in Redis
TENANT_SHARED_HIT = ("tenant", "shared_hit")
TENANT_HIT = ("tenant", "hit")
TENANT_MISS = ("tenant", "miss")
MAX_DURATIONS = 10_000


class AuthStats:
    __slots__ = (
        "lookups",
        "sessions_opened",
        "socket_context_hits",
        "stale_served",
        "validation_seconds",
        "validations",
    )

    def __init__(self) -> None:
        # (cache, result) -> count; cache: token, credential, tenant; result: hit, miss, stale
        self.lookups: Counter[tuple[str, str]] = Counter()
        self.validations: Counter[str] = Counter()  # access tokens, by result code or "ok"
        self.validation_seconds: list[float] = []  # verifications (cache misses) since taken
        self.stale_served = 0
        self.sessions_opened = 0  # logins and SDK sessions
        self.socket_context_hits = 0  # websocket contexts read and found

    def take_durations(self) -> list[float]:
        taken, self.validation_seconds = self.validation_seconds, []
        return taken
