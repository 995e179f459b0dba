"""What the auth core counts on the hot path: plain integers, a few nanoseconds an increment.
The gateway copies them into its metrics (gateway_auth_cache_*, gateway_token_validations_total)
when it publishes or serves /metrics."""

from __future__ import annotations

from typing import Final, TypeVar

from mypy_extensions import mypyc_attr

K = TypeVar("K")

TOKEN_HIT: Final = ("token", "hit")
TOKEN_MISS: Final = ("token", "miss")
CREDENTIAL_HIT: Final = ("credential", "hit")
CREDENTIAL_MISS: Final = ("credential", "miss")
CREDENTIAL_SHARED_HIT: Final = ("credential", "shared_hit")  # a miss here, found in Redis
TENANT_SHARED_HIT: Final = ("tenant", "shared_hit")
TENANT_HIT: Final = ("tenant", "hit")
TENANT_MISS: Final = ("tenant", "miss")
MAX_DURATIONS: Final = 10_000


# A plain Python class in the compiled build too: mypyc's own classes cannot derive from dict.
@mypyc_attr(native_class=False)
class Tally(dict[K, int]):
    """Counts by key; a key never counted reads as 0, as in collections.Counter. Not a Counter:
    Counter defines __delitem__, so every `counter[key] += 1` stored through a look-up of
    __setitem__ on the class (about 1,100 instructions compiled, callgrind); this stores as a
    dict does."""

    def __missing__(self, key: K) -> int:
        return 0


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
        self.lookups: Tally[tuple[str, str]] = Tally()
        self.validations: Tally[str] = Tally()  # access tokens, by result code or "ok"
        self.validation_seconds: list[float] = []  # verifications (cache misses) since taken
        self.stale_served = 0
        self.sessions_opened = 0  # logins and SDK sessions
        self.socket_context_hits = 0  # websocket contexts read and found

    def take_durations(self) -> list[float]:
        taken, self.validation_seconds = self.validation_seconds, []
        return taken
