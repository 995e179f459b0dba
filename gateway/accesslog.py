"""One JSON object a line a request, buffered and flushed off the hot path.

Only what cannot carry a secret is logged: the canonical path without its query string (which
may hold an `access_token`), never a header value other than the user agent.
"""

from __future__ import annotations

import asyncio
import sys
import time
from json.encoder import encode_basestring_ascii as _json_str
from typing import IO

_FLUSH_AFTER = 0.25  # seconds a line may wait in the buffer
_FLUSH_LINES = 512
_NAME_CACHE = 1024


class AccessLog:
    """Buffered access log to stdout, a file, or nowhere."""

    def __init__(self, destination: str) -> None:
        self.enabled = destination != "off"
        self._stream: IO[str] | None = None
        self._owned = False
        if destination == "stdout":
            self._stream = sys.stdout
        elif self.enabled:
            self._stream = open(destination, "a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        self._lines: list[str] = []
        self._names: dict[str, str] = {}
        self._agents: dict[str | None, str] = {}
        self._handle: asyncio.TimerHandle | None = None

    def log(
        self,
        request_id: str,
        remote: str,
        method: str,
        path: str,
        status: int,
        duration: float,
        route: str,
        upstream: str,
        user_agent: str | None,
    ) -> None:
        if not self.enabled:
            return
        # request ids ([A-Za-z0-9._-]), addresses, llhttp's method names, route and upstream
        # names (encoded once) need no escaping; the path and user agent may.
        names = self._names
        route_json = names.get(route)
        if route_json is None:
            route_json = names[route] = _json_str(route)
        upstream_json = names.get(upstream)
        if upstream_json is None:
            upstream_json = names[upstream] = _json_str(upstream)
        if len(names) > _NAME_CACHE:
            names.clear()
        agent = self._agents.get(user_agent)
        if agent is None:
            agent = _json_str(user_agent) if user_agent else "null"
            if len(self._agents) < _NAME_CACHE:
                self._agents[user_agent] = agent
        path_json = _json_str(path) if '"' in path else '"' + path + '"'
        # The two numbers are formatted apart: compiled with mypyc, an f-string with a format
        # spec in it formats each of its parts with a str.format call (ten a line), one without
        # joins them directly.
        ts = f"{time.time():.3f}"
        duration_ms = f"{duration * 1000:.3f}"
        self._lines.append(
            f'{{"ts":{ts},"request_id":"{request_id}","remote":"{remote}",'
            f'"method":"{method}","path":{path_json},'
            f'"status":{status},"duration_ms":{duration_ms},"route":{route_json},'
            f'"upstream":{upstream_json},"user_agent":{agent}}}\n'
        )
        if len(self._lines) >= _FLUSH_LINES:
            self.flush()
        elif self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(_FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self._lines or self._stream is None:
            return
        lines, self._lines = self._lines, []
        try:
            self._stream.write("".join(lines))
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full log must not take requests down with it

    def close(self) -> None:
        self.flush()
        if self._owned and self._stream is not None:
            self._stream.close()
