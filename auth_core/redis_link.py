"""The connection to Redis (GATEWAY_REDIS_URL), when there is one, and whether it works.

One client a worker process, shared by the revocation feed and the rate limiter. Redis is a
help, never a dependency: every caller has a local fallback, and `healthy` (with the time it
last failed) is what /ready and the metrics report as degraded. Keys are namespaced with
GATEWAY_REDIS_PREFIX so that several deployments (or test runs) can share one server.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("auth_core")

CONNECT_TIMEOUT = 1.0
COMMAND_TIMEOUT = 0.5  # seconds a command may take before Redis counts as unavailable
RETRY_AFTER = 1.0  # seconds a failed Redis is left alone before it is tried again


class RedisLink:
    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.client: aioredis.Redis = aioredis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            health_check_interval=10,
        )
        self.healthy = True
        self.failed_at = 0.0
        self.failures = 0
        # An administration command says in its own words what a failure meant (gateway/
        # admin_cli.py): "serving from local state" is a server's story.
        self.quiet = False

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def usable(self) -> bool:
        """Worth trying now: healthy, or failed long enough ago to try again."""
        return self.healthy or time.monotonic() - self.failed_at >= RETRY_AFTER

    def failed(self, error: BaseException) -> None:
        if self.healthy and not self.quiet:
            log.warning("Redis is unavailable, serving from local state: %s", error)
        self.healthy = False
        self.failed_at = time.monotonic()
        self.failures += 1

    def succeeded(self) -> None:
        if not self.healthy:
            log.info("Redis is back")
        self.healthy = True

    async def ping(self) -> bool:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            self.failed(exc)
            return False
        self.succeeded()
        return True

    async def close(self) -> None:
        await self.client.aclose()


PUBSUB_CHECK = 2.0  # seconds: a subscription pings a quiet server this often ...


def new_pubsub_client(link: RedisLink) -> aioredis.Redis:
    """A client of its own for a subscription. A quiet connection is pinged every PUBSUB_CHECK
    seconds and the answer waited for at most as long, so a server that froze (SIGSTOP, a
    network that drops everything) is noticed instead of waited on for ever."""
    return aioredis.from_url(
        link.url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=PUBSUB_CHECK,
        health_check_interval=PUBSUB_CHECK,
    )
