"""The context of open websockets: who is connected, under a documented key, so that
the socket service and others can read it; removed when the socket closes.

With Redis: `<prefix>ws:<connection id>`, a JSON object, expiring after a day as a safety net
should a gateway die without removing it. Without Redis: in this process (readable through
`GET /api/v1/auth/internal/sockets/{id}` on the worker that holds the socket).
"""

from __future__ import annotations

import json
from typing import Any

from redis.exceptions import RedisError

from auth_core.redis_link import RedisLink

SAFETY_TTL = 86400  # seconds


class SocketContexts:
    def __init__(self, link: RedisLink | None) -> None:
        self.link = link
        self.local: dict[str, dict[str, Any]] = {}

    async def put(self, connection_id: str, context: dict[str, Any]) -> None:
        self.local[connection_id] = context
        link = self.link
        if link is not None and link.usable():
            try:
                await link.client.set(
                    link.key("ws", connection_id), json.dumps(context), ex=SAFETY_TTL
                )
            except (RedisError, OSError) as exc:
                link.failed(exc)

    async def remove(self, connection_id: str) -> None:
        self.local.pop(connection_id, None)
        link = self.link
        if link is not None and link.usable():
            try:
                await link.client.delete(link.key("ws", connection_id))
            except (RedisError, OSError) as exc:
                link.failed(exc)

    async def get(self, connection_id: str) -> dict[str, Any] | None:
        link = self.link
        if link is not None and link.usable():
            try:
                raw = await link.client.get(link.key("ws", connection_id))
            except (RedisError, OSError) as exc:
                link.failed(exc)
            else:
                if raw is not None:
                    value = json.loads(raw)
                    return value if isinstance(value, dict) else None
        return self.local.get(connection_id)
