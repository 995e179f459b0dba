"""What the kits' tests share: the shared vectors, a real ASGI server (uvicorn) on loopback,
a gateway whose service keyring the test knows, and a clock a test can move on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn

from auth_core.tokens import Keyring
from gateway.context import derive_key, format_key
from tests.support import LOOPBACK, auth_settings, eventually, quiet_settings

ROOT = Path(__file__).resolve().parent.parent.parent.parent
VECTORS = ROOT / "kits" / "vectors" / "context-v2.json"

SECRET = "s" * 40  # the gateway's GATEWAY_SERVICE_SECRET entry k1 in these tests
OLD_SECRET = "o" * 40  # an entry k0 the gateway verified with before (rotation)


def vectors() -> dict[str, Any]:
    return json.loads(VECTORS.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def service_keys(audience: str) -> str:
    """What `gateway context-key AUDIENCE` prints for the gateway of these tests, joined by
    commas as an environment variable holds it."""
    return ",".join(
        format_key(kid, derive_key(secret.encode(), audience))
        for kid, secret in (("k1", SECRET), ("k0", OLD_SECRET))
    )


def gateway_settings(directory: Path, **auth: Any) -> Any:
    """Settings of a gateway that signs with SECRET (kid k1)."""
    return dataclasses.replace(
        quiet_settings(),
        auth=auth_settings(
            directory, service_keyring=Keyring.parse(f"k1:{SECRET},k0:{OLD_SECRET}"), **auth
        ),
    )


@dataclasses.dataclass
class Clock:
    """time.time(), moved on by `offset` seconds when a test wants a signature to be old."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def uvicorn_server(app: Any) -> AsyncIterator[int]:
    """`app` served by uvicorn on loopback in this event loop; its port."""
    sock = socket.socket()
    sock.bind((LOOPBACK, 0))
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started or task.done(), "uvicorn started")
        assert not task.done(), "uvicorn stopped before it started"
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()
