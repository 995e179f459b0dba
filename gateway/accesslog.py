"""One JSON object a line a request, buffered and flushed off the hot path.

Only what cannot carry a secret is logged: the canonical path without its query string (which
may hold an `access_token`), ids (never a credential, cookie or header value other than the user
agent). The fields are listed in docs/operations/observability.md.
"""

from __future__ import annotations

import asyncio
import sys
import time
from json.encoder import encode_basestring_ascii as _json_str
from typing import IO, Final

# Final: compiled with mypyc, a Final module name is a C static (a literal is inlined); any
# other is a look-up in the module's dict each time it is read (`_THREE` four times a line).
_FLUSH_AFTER: Final = 0.25  # seconds a line may wait in the buffer
_FLUSH_LINES: Final = 512
_NAME_CACHE: Final = 1024
# "000" to "999": the decimals of a millisecond figure and the milliseconds of `ts`. Figures are
# formatted with integer arithmetic, not `f"{x:.3f}"`: compiled with mypyc, a format spec is a
# str.format call.
_THREE: Final = tuple(f"{n:03d}" for n in range(1000))
_NO_UPSTREAM: Final = 'null,"upstream_status":null,"upstream_ms":null'
_NO_ANSWER: Final = ',"upstream_status":null,"upstream_ms":null'
_NOBODY: Final = '"user_id":null,"tenant_id":null,"credential_id":null'
# `time.time()` is an attribute look-up on the module first.
_time: Final = time.time


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
        self._callers: dict[tuple[str | None, str | None, str | None], str] = {}
        self._handle: asyncio.TimerHandle | None = None
        # `{"ts":"2026-12-03T19:30:00.` for the second `_second`.
        self._second = -1
        self._ts_prefix = ""

    def _name(self, name: str | None) -> str:
        """`name` as a JSON string (or null), encoded once."""
        if name is None:
            return "null"
        names = self._names
        encoded = names.get(name)
        if encoded is None:
            if len(names) > _NAME_CACHE:
                names.clear()
            encoded = names[name] = _json_str(name)
        return encoded

    def _agent(self, user_agent: str | None) -> str:
        """A user agent as a JSON string (or null), encoded once while there are few."""
        agent = _json_str(user_agent) if user_agent else "null"
        if len(self._agents) < _NAME_CACHE:
            self._agents[user_agent] = agent
        return agent

    def _who(self, user_id: str | None, tenant_id: str | None, credential_id: str | None) -> str:
        """The three ids' fields, made once for each caller seen lately. They are the auth core's
        own ids ([a-z]+_[0-9a-f]+: a user's from the `sub` of a token it signed, a tenant's and
        a credential's from its database): nothing to escape."""
        if len(self._callers) > _NAME_CACHE:
            self._callers.clear()
        user = "null" if user_id is None else f'"{user_id}"'
        tenant = "null" if tenant_id is None else f'"{tenant_id}"'
        credential = "null" if credential_id is None else f'"{credential_id}"'
        who = f'"user_id":{user},"tenant_id":{tenant},"credential_id":{credential}'
        self._callers[(user_id, tenant_id, credential_id)] = who
        return who

    def _new_second(self, second: int) -> None:
        """`ts` up to its milliseconds (RFC 3339, UTC), formatted once a second."""
        self._second = second
        self._ts_prefix = time.strftime('{"ts":"%Y-%m-%dT%H:%M:%S.', time.gmtime(second))

    def log(
        self,
        request_id: str,
        trace_id: str | None,
        remote: str,
        method: str,
        path: str,
        status: int,
        duration: float,
        route: str,
        upstream: str | None,
        target: str | None,
        upstream_status: int,
        upstream_duration: float,
        bytes_in: int,
        bytes_out: int | None,
        auth: str,
        user_id: str | None,
        tenant_id: str | None,
        credential_id: str | None,
        error: str | None,
        user_agent: str | None,
    ) -> None:
        """One request's line. `target` None: no upstream was tried; `upstream_status` 0: none
        answered (its duration is then not logged); `bytes_out` None: not known."""
        if not self.enabled:
            return
        # Request and trace ids ([A-Za-z0-9._-], hex), addresses, llhttp's method names, auth
        # kinds, error codes and the auth core's ids need no escaping; route, upstream and
        # target names and user agents are encoded once; a path may need it.
        now = _time()
        second = int(now)
        if second != self._second:
            self._new_second(second)
        names = self._names
        route_json = names.get(route) or self._name(route)
        upstream_json = self._name(upstream) if upstream is None else names.get(upstream)
        if upstream_json is None:
            upstream_json = self._name(upstream)
        agent = self._agents.get(user_agent)
        if agent is None:
            agent = self._agent(user_agent)
        if user_id is None and tenant_id is None and credential_id is None:
            who = _NOBODY
        else:
            who = self._callers.get((user_id, tenant_id, credential_id)) or self._who(
                user_id, tenant_id, credential_id
            )
        micros = int(duration * 1_000_000)
        if (
            target is not None
            and upstream_status
            and trace_id is not None
            and error is None
            and bytes_out is not None
            and '"' not in path
            and "\\" not in path
        ):
            # A request the upstream answered, the usual line: built in one go, no part of it
            # made apart (each made apart is a string allocated and copied once more).
            target_json = names.get(target) or self._name(target)
            upstream_micros = int(upstream_duration * 1_000_000)
            line = (
                f'{self._ts_prefix}{_THREE[int((now - second) * 1000)]}Z",'
                f'"request_id":"{request_id}","trace_id":"{trace_id}","remote":"{remote}",'
                f'"method":"{method}","path":"{path}","status":{status},'
                f'"duration_ms":{micros // 1000}.{_THREE[micros % 1000]},"route":{route_json},'
                f'"upstream":{upstream_json},"upstream_addr":{target_json},'
                f'"upstream_status":{upstream_status},'
                f'"upstream_ms":{upstream_micros // 1000}.{_THREE[upstream_micros % 1000]},'
                f'"bytes_in":{bytes_in},"bytes_out":{bytes_out},"auth":"{auth}",{who},'
                f'"error":null,"user_agent":{agent}}}\n'
            )
        else:
            if target is None:
                upstream_part = _NO_UPSTREAM
            elif upstream_status:
                upstream_micros = int(upstream_duration * 1_000_000)
                upstream_part = (
                    f"{names.get(target) or self._name(target)},"
                    f'"upstream_status":{upstream_status},'
                    f'"upstream_ms":{upstream_micros // 1000}.{_THREE[upstream_micros % 1000]}'
                )
            else:
                upstream_part = (names.get(target) or self._name(target)) + _NO_ANSWER
            path_json = _json_str(path) if '"' in path or "\\" in path else '"' + path + '"'
            trace = "null" if trace_id is None else '"' + trace_id + '"'
            code = "null" if error is None else '"' + error + '"'
            sent = "null" if bytes_out is None else str(bytes_out)
            line = (
                f'{self._ts_prefix}{_THREE[int((now - second) * 1000)]}Z",'
                f'"request_id":"{request_id}","trace_id":{trace},"remote":"{remote}",'
                f'"method":"{method}","path":{path_json},"status":{status},'
                f'"duration_ms":{micros // 1000}.{_THREE[micros % 1000]},"route":{route_json},'
                f'"upstream":{upstream_json},"upstream_addr":{upstream_part},'
                f'"bytes_in":{bytes_in},"bytes_out":{sent},"auth":"{auth}",{who},'
                f'"error":{code},"user_agent":{agent}}}\n'
            )
        self._lines.append(line)
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
