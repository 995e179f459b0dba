"""What the kits' tests share: the shared vectors, a real ASGI server (uvicorn) on loopback,
a gateway whose service keyring the test knows, and a clock a test can move on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn

from auth_core.tokens import Keyring
from gateway.context import derive_key, format_key
from tests.support import LOOPBACK, auth_settings, eventually, free_port, quiet_settings

# Not resolved: in the compiled test pass (scripts/test) this is a directory of links to the
# tests and kits without the sources, and the child processes started here must import the
# compiled gateway, not the sources beside the tests.
ROOT = Path(__file__).absolute().parents[3]
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


# -- the Django test site in a process of its own ----------------------------------------------

DJANGO_SITE = "tests.kits.python.django_site"
KIT_PATHS = [ROOT, ROOT / "kits" / "python" / "django", ROOT / "kits" / "python" / "asgi"]


def django_environment(directory: Path, **variables: str) -> dict[str, str]:
    """The environment of the test site's processes: its own SQLite file, the keys of
    `billing`, the kits importable."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(path) for path in KIT_PATHS),
        "DJANGO_SETTINGS_MODULE": f"{DJANGO_SITE}.settings",
        "DJANGO_DATABASE": str(directory / "django.sqlite3"),
        "GATEWAY_CONTEXT_KEYS": service_keys("billing"),
        "TEST_CLOCK_FILE": str(directory / "clock-offset"),
        **variables,
    }


def manage(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`manage.py ARGS` of the test site, run to its end; fails the test if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


@asynccontextmanager
async def django_site(directory: Path, **variables: str) -> AsyncIterator[str]:
    """The test site, migrated, served by uvicorn (Django's ASGI handler) in a child process
    on loopback; its URL."""
    environment = django_environment(directory, **variables)
    manage(environment, "migrate", "--verbosity", "0")
    port = free_port()
    log = directory / f"django-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"{DJANGO_SITE}.asgi:application",
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--lifespan",
                "off",
                "--no-access-log",
            ],
            env=environment,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{LOOPBACK}:{port}"
    try:
        await eventually(
            lambda: process.poll() is not None or answers(port),
            f"the Django site answering on {url}",
        )
        assert process.poll() is None, log.read_text()
        yield url
    finally:
        process.terminate()
        process.wait(10)


def answers(port: int) -> bool:
    """Whether something answers HTTP on the port (the site's exempt /healthz)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def move_clock(directory: Path, seconds: float) -> None:
    """Move the test site's clock on (read at each request)."""
    (directory / "clock-offset").write_text(str(seconds))
