"""`gateway serve` with TLS as a real process: a bad certificate stops start-up in one line,
and SIGHUP makes every worker serve a renewed certificate (docs/tls.md)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.server.conftest import worker_pids
from tests.gateway.tls.certs import Authority
from tests.gateway.tls.client import https_get
from tests.support import LOOPBACK, free_port, routes, start_gateway_process

ROUTES = routes(
    {"echo": [f"http://{LOOPBACK}:9"]}, "{name: echo, path: /echo, upstream: echo, auth: none}"
)
WAIT = 20.0


def serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "routes.yaml"
    config.write_text(ROUTES)
    return subprocess.run(
        [
            *(sys.executable, "-m", "gateway", "serve", "--config", str(config)),
            *("--host", LOOPBACK, "--port", str(free_port())),
        ],
        env={
            **os.environ,
            "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param(
            "missing",
            "gateway: GATEWAY_TLS_CERT_FILE: '{dir}/nope.crt' is not a readable file",
            id="no such file",
        ),
        pytest.param(
            "mismatch",
            "gateway: GATEWAY_TLS_CERT_FILE: {dir}/a.crt / {dir}/b.key: "
            "the key does not belong to the certificate",
            id="the key of another certificate",
        ),
        pytest.param(
            "key only",
            "gateway: GATEWAY_TLS_CERT_FILE: required with GATEWAY_TLS_KEY_FILE "
            "(the certificate and its key)",
            id="a key without a certificate",
        ),
    ],
)
def test_a_bad_certificate_stops_start_up_in_one_line(
    tmp_path: Path, authority: Authority, files: str, message: str
) -> None:
    authority.issue(tmp_path / "a.crt", tmp_path / "a.key", "a.test")
    authority.issue(tmp_path / "b.crt", tmp_path / "b.key", "b.test")
    env = {
        "missing": {
            "GATEWAY_TLS_CERT_FILE": str(tmp_path / "nope.crt"),
            "GATEWAY_TLS_KEY_FILE": str(tmp_path / "a.key"),
        },
        "mismatch": {
            "GATEWAY_TLS_CERT_FILE": str(tmp_path / "a.crt"),
            "GATEWAY_TLS_KEY_FILE": str(tmp_path / "b.key"),
        },
        "key only": {"GATEWAY_TLS_KEY_FILE": str(tmp_path / "a.key")},
    }[files]
    done = serve(tmp_path, env)
    assert done.returncode == 1
    assert done.stderr.strip() == message.format(dir=tmp_path)
    assert "Traceback" not in done.stdout + done.stderr


async def all_serve(port: int, authority: Authority, serial: int) -> None:
    """Twenty new connections in a row get the certificate `serial` (so every worker does)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    in_a_row = 0
    while in_a_row < 20:
        assert loop.time() < deadline, f"certificate {serial} was not served by every worker"
        _, served = await https_get(port, authority.client(), "localhost", "/health")
        in_a_row = in_a_row + 1 if served == serial else 0
        if not in_a_row:
            await asyncio.sleep(0.05)


async def test_sighup_renews_the_certificate_in_every_worker_and_a_restarted_one(
    tmp_path: Path, authority: Authority
) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    authority.issue(certs / "default.crt", certs / "default.key", "localhost")
    process = start_gateway_process(
        ROUTES,
        tmp_path,
        workers=2,
        env={"GATEWAY_TLS_DIR": str(certs), "GATEWAY_WATCH_CONFIG": "false"},
        tls=authority.client(),
    )
    try:
        renewed = authority.issue(certs / "default.crt", certs / "default.key", "localhost")
        process.signal(signal.SIGHUP)
        await all_serve(process.port, authority, renewed)

        # A worker that dies is restarted from the supervisor, which loaded the certificates
        # at start-up: the restarted one must serve the renewed certificate too.
        before = worker_pids(process)
        os.kill(min(before), signal.SIGKILL)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        # Serving: two workers said so at start, the restarted one is the third.
        while process.logs().count("worker serving on port") < 3:
            assert loop.time() < deadline, "the worker was not restarted"
            await asyncio.sleep(0.05)
        assert worker_pids(process) - before
        await all_serve(process.port, authority, renewed)
    finally:
        assert process.stop() == 0
