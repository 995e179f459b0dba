"""Websockets through the gateway against a direct connection, on one machine:

- messages a second: --clients connections each sending --size-byte text messages and waiting
  for each echo, for --seconds, straight to the upstream and then through one gateway worker;
- memory: the RSS of one gateway worker holding --idle idle sockets (each one a client
  connection and an upstream connection), against the same worker with none.

The upstream is an aiohttp websocket echo server in its own process. Run:
`.venv/bin/python bench/websocket.py` (it raises its own open-file limit, which 10,000 sockets
through one worker need twice over).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

UPSTREAM = textwrap.dedent(
    """
    import sys
    from aiohttp import web

    async def echo(request):
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        async for message in ws:
            if message.type == web.WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)
ROUTES = """\
version: 1
upstreams:
  sockets:
    targets: ["http://127.0.0.1:{port}"]
    timeout: 10m
routes:
  - {{name: socket, path: /ws, upstream: sockets, auth: none, websocket: true}}
"""


def raise_file_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def rate(url: str, clients: int, size: int, seconds: float) -> float:
    message = "x" * size
    counts = [0] * clients
    stop = time.monotonic() + seconds

    async def one(index: int, session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(url, max_msg_size=0) as ws:
            while time.monotonic() < stop:
                await ws.send_str(message)
                await ws.receive()
                counts[index] += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(index, session) for index in range(clients)))
    return sum(counts) / seconds


async def hold_idle(url: str, count: int, pid: int) -> tuple[int, int]:
    """RSS (KiB) of the worker before and with `count` idle sockets open through it."""
    before = h.rss_kib(pid)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = []
        for start in range(0, count, 500):
            batch = [session.ws_connect(url) for _ in range(min(500, count - start))]
            sockets += await asyncio.gather(*batch)
        await asyncio.sleep(2)
        during = h.rss_kib(pid)
        await asyncio.gather(*(ws.close() for ws in sockets))
    return before, during


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--idle", type=int, default=10_000)
    args = parser.parse_args()
    raise_file_limit()
    work = h.Workdir()
    upstream_port = h.free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-c", UPSTREAM, str(upstream_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result: dict[str, object] = {}
    try:
        time.sleep(1.5)
        env = {
            "GATEWAY_DATABASE_URL": f"sqlite:///{work.path}/bench.db",
            "GATEWAY_WS_MAX_PER_ADDRESS": str(args.idle + 100),
            "GATEWAY_ACCESS_LOG": "off",
        }
        gateway = h.start_gateway(
            work, "ws-gateway", "0-1", ROUTES.format(port=upstream_port), 1, env
        )
        try:
            direct = asyncio.run(
                rate(f"ws://127.0.0.1:{upstream_port}/ws", args.clients, args.size, args.seconds)
            )
            through = asyncio.run(
                rate(f"ws://127.0.0.1:{gateway.port}/ws", args.clients, args.size, args.seconds)
            )
            result["messages_per_second"] = {
                "direct": round(direct),
                "gateway": round(through),
                "ratio": round(through / direct, 3),
                "clients": args.clients,
                "size": args.size,
            }
            print(json.dumps(result["messages_per_second"]), flush=True)
            worker = h.process_tree(gateway.process.pid)[-1]
            before, during = asyncio.run(
                hold_idle(f"ws://127.0.0.1:{gateway.port}/ws", args.idle, worker)
            )
            result["idle_sockets"] = {
                "count": args.idle,
                "rss_kib_before": before,
                "rss_kib_with_sockets": during,
                "kib_per_socket": round((during - before) / args.idle, 2),
            }
            print(json.dumps(result["idle_sockets"]), flush=True)
        finally:
            gateway.stop()
    finally:
        upstream.terminate()
        upstream.wait(10)
        work.cleanup()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (h.RESULTS / f"websocket-{stamp}.json").write_text(json.dumps(result, indent=2))
    print(f"saved bench/results/websocket-{stamp}.json")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
