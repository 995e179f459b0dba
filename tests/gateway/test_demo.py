"""`gateway demo` with the shipped routes.yaml: it starts its echo upstream, creates the demo
user, tenant and API key, and the commands it prints work (followed here with a real client,
the echo upstream moved to a free loopback port)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, ClientTimeout

from tests.support import GATEWAY_COMMAND, LOOPBACK, command_environment, free_port

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = ClientTimeout(total=30)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The demo running; its base URL and what it printed once ready."""
    echo_port, port = free_port(), free_port()
    config = tmp_path / "routes.yaml"
    config.write_text(
        (ROOT / "routes.yaml").read_text().replace("127.0.0.1:9001", f"127.0.0.1:{echo_port}")
    )
    log = tmp_path / "demo.log"
    environment = command_environment(tmp_path, GATEWAY_ACCESS_LOG="off")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*GATEWAY_COMMAND, "demo", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        deadline = time.monotonic() + 30
        while "Ctrl-C stops it." not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield f"http://{LOOPBACK}:{port}", log.read_text()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


async def test_the_commands_the_demo_prints_work(demo: tuple[str, str]) -> None:
    base, printed = demo
    password = re.search(r"\(password (\S+)\)", printed)
    key = re.search(r"X-API-Key: (gwk_[0-9A-Za-z]{38})", printed)
    assert password is not None, printed
    assert key is not None, printed
    async with ClientSession(timeout=TIMEOUT) as client:
        async with client.get(f"{base}/echo/hello?name=world") as response:
            assert response.status == 200
            assert (await response.json())["query"] == "name=world"
        async with client.post(
            f"{base}/api/v1/auth/login",
            json={"email": "demo@example.com", "password": password.group(1)},
        ) as response:
            assert response.status == 200
            token = (await response.json())["access_token"]
        async with client.get(
            f"{base}/private/hello", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200
            assert (await response.json())["headers"]["X-Auth-Method"] == "jwt"
        async with client.get(
            f"{base}/partner/hello", headers={"X-API-Key": key.group(1)}
        ) as response:
            assert response.status == 200
            assert (await response.json())["headers"]["X-Auth-Method"] == "api_key"
        async with client.post(
            f"{base}/v1/sdk/session",
            headers={"X-API-Key": key.group(1)},
            json={"external_user_id": "user-1"},
        ) as response:
            assert response.status == 200
            session = await response.json()
        assert session["user"]["tenant_id"] is not None
        async with client.get(
            f"{base}/private/hello",
            headers={"Authorization": f"Bearer {session['access_token']}", "Origin": base},
        ) as response:
            assert response.status == 200, await response.text()
        socket = re.search(r"python -m gateway.demo.wsclient (ws://\S+) ", printed)
        assert socket is not None, printed
        async with client.ws_connect(socket.group(1), protocols=("bearer", token)) as ws:
            greeting = await ws.receive_json()
            assert greeting["connected_as"] == "demo@example.com"
            await ws.send_str("hi")
            assert await ws.receive_str() == "hi"
        async with client.get(f"{base}/ready") as response:
            assert response.status == 200
            assert json.loads(await response.text())
    tried = subprocess.run(
        [sys.executable, "-m", "gateway.demo.wsclient", socket.group(1), token],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert tried.returncode == 0, tried.stderr
    assert "< hello" in tried.stdout
