"""When a worker reads the revocation table again: pushed, within milliseconds, or polled.

The `revocations` table is the one record of what is revoked; this only says when to look.
With Redis, the worker that revokes publishes the new row's id on `<prefix>revocations`, and
every worker of every replica, subscribed, reads the table at once; a slow safety poll covers
a lost message. Without Redis (the embedded mode, or while Redis is away) every worker polls
the table every POLL_INTERVAL: a few hundred microseconds against local SQLite. A worker whose
subscription broke reads the table as soon as it is back (the table is the catch-up, so nothing
revoked meanwhile can be missed), and a worker that could not announce its revocation announces
it as soon as Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from auth_core.redis_link import PUBSUB_CHECK, RedisLink, new_pubsub_client
from auth_core.tasks import stop_tasks

log = logging.getLogger("auth_core")

POLL_INTERVAL = 0.05  # seconds, without a live subscription
SAFETY_INTERVAL = 2.0  # seconds, with one
CHANNEL = "revocations"
RECONNECT_BACKOFF = (0.1, 0.2, 0.5, 1.0)
_PUBLISH_ATTEMPTS = 3


class RevocationFeed:
    def __init__(self, link: RedisLink | None) -> None:
        self.link = link
        self.poll_interval = POLL_INTERVAL
        self.safety_interval = SAFETY_INTERVAL
        self.wake = asyncio.Event()
        self.subscribed = False
        self.received = 0  # announcements heard (for metrics and tests)
        self.announced = 0  # the highest revocation id announced to us
        self._unannounced = 0  # the newest revocation of ours not yet published
        self._task: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._closing = False

    @property
    def interval(self) -> float:
        """How long to wait for a push before reading the table anyway."""
        return self.safety_interval if self.subscribed else self.poll_interval

    @property
    def owed(self) -> bool:
        """A revocation of ours is not announced yet (Redis could not be reached)."""
        return self._unannounced != 0

    def start(self) -> None:
        if self.link is not None:
            self._task = asyncio.get_running_loop().create_task(self._subscribe_forever())

    async def announce(self, revocation_id: int) -> None:
        """Tell every worker of every replica to read the table now."""
        if self.link is None:
            return  # no Redis: the others poll
        self._unannounced = max(self._unannounced, revocation_id)
        await self._publish_unannounced()

    async def _publish_unannounced(self) -> None:
        """Publish the newest revocation not yet announced. One that could not be (Redis away,
        or every pooled connection stale after a restart) stays owed, and this worker's
        subscription loop pays it as soon as Redis answers again: the others, subscribed,
        would otherwise wait for their safety poll."""
        link = self.link
        pending = self._unannounced
        if link is None or not pending or not link.usable():
            return
        for attempt in range(1, _PUBLISH_ATTEMPTS + 1):
            try:
                await link.client.publish(link.key(CHANNEL), str(pending))
            except RedisConnectionError as exc:
                # A pooled connection the server closed while it sat idle (Redis restarted):
                # the pool has dropped it, and the next try takes another or opens a fresh one.
                if attempt == _PUBLISH_ATTEMPTS:
                    link.failed(exc)
            except (RedisError, OSError) as exc:
                link.failed(exc)
                return
            else:
                link.succeeded()
                if self._unannounced == pending:
                    self._unannounced = 0
                return

    async def _subscribe_forever(self) -> None:
        assert self.link is not None
        loop = asyncio.get_running_loop()
        attempt = 0
        while not self._closing:
            client = new_pubsub_client(self.link)
            pubsub = self._pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.link.key(CHANNEL))
                self.subscribed = True
                self.link.succeeded()
                attempt = 0
                self.wake.set()  # catch up on whatever came while we were not listening
                checked = loop.time()
                while not self._closing:
                    if self._unannounced:
                        await self._publish_unannounced()
                    if loop.time() - checked >= PUBSUB_CHECK:
                        # A frozen server says nothing and closes nothing: ask it. No answer
                        # within the command timeout ends this subscription (and we poll).
                        await self.link.client.ping()
                        checked = loop.time()
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self.received += 1
                        with contextlib.suppress(TypeError, ValueError):
                            self.announced = max(self.announced, int(message["data"]))
                        self.wake.set()
            except (RedisError, OSError) as exc:
                self.link.failed(exc)
            finally:
                self.subscribed = False
                # The follower may be waiting out a safety interval chosen while subscribed:
                # wake it, so that it polls from now on instead of after that interval.
                self.wake.set()
                self._pubsub = None
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            await asyncio.sleep(RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)])
            attempt += 1

    async def close(self) -> None:
        if self._task is None:
            return
        self._closing = True
        pubsub = self._pubsub
        if pubsub is not None and pubsub.connection is not None:
            # A read that ends in "connection closed" ends the loop (it sees _closing) even
            # where redis-py loses the cancellation below (see auth_core.tasks).
            with contextlib.suppress(RedisError, OSError):
                await pubsub.connection.disconnect(nowait=True)
        await stop_tasks([self._task])
        self._task = None
