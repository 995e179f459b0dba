"""A tiny websocket client for trying the demo: `python -m gateway.demo.wsclient URL TOKEN`
connects with the token in the subprotocol list (as a browser would), sends each line of
standard input and prints what comes back."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import ClientSession, WSMsgType

from auth_core import headers as h

REPLY_GRACE = 0.5  # seconds the answers to the last lines sent have to arrive after end of input


async def _run(url: str, token: str) -> int:
    async with (
        ClientSession() as session,
        session.ws_connect(url, protocols=("bearer", token)) as ws,
    ):
        connection = ws._response.headers.get(h.X_CONNECTION_ID)
        print(f"connected ({connection}); type lines, Ctrl-D ends")

        async def show() -> None:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    print(f"< {message.data}")
            print(f"closed: {ws.close_code}")

        reader = asyncio.get_running_loop().create_task(show())
        while line := await asyncio.to_thread(sys.stdin.readline):
            await ws.send_str(line.rstrip("\n"))
        # The answers to the last lines may still be on their way, and aiohttp's close() ends
        # the reader at once, dropping them: give them a moment (or the server its own close).
        await asyncio.wait({reader}, timeout=REPLY_GRACE)
        await ws.close()
        await reader
    return 0


def main() -> int:
    if len(sys.argv) != 3:
        print(
            "usage: python -m gateway.demo.wsclient ws://HOST:PORT/PATH ACCESS_TOKEN",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(_run(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
