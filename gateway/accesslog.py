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

from auth_core.models import Principal

# Final: compiled with mypyc, a Final module name is a C static (a literal is inlined); any
# other is a look-up in the module's dict each time it is read (`_THREE` four times a line).
_FLUSH_AFTER: Final = 0.25  # seconds a line may wait in the buffer
_FLUSH_LINES: Final = 512
_NAME_CACHE: Final = 1024
_AGENT_KEPT: Final = 256  # bytes: longer user agents are encoded every time
# "000" to "999": the decimals of a millisecond figure and the milliseconds of `ts`. Figures are
# formatted with integer arithmetic, not `f"{x:.3f}"`: compiled with mypyc, a format spec is a
# str.format call.
_THREE: Final = tuple(f"{n:03d}" for n in range(1000))
# "0" to "999": the usual status, millisecond and byte figures, looked up rather than formatted
# (in pure Python an int formatted into the line costs about 800 instructions, a look-up 100).
_DECIMAL: Final = tuple(str(n) for n in range(1000))
_NO_UPSTREAM: Final = 'null,"upstream_status":null,"upstream_ms":null'
_NO_ANSWER: Final = ',"upstream_status":null,"upstream_ms":null'
_NOBODY: Final = '"user_id":null,"tenant_id":null,"credential_id":null'
# `time.time_ns()` is an attribute look-up on the module first. Nanoseconds: the second and
# its milliseconds come from integer divisions, where a float's needed `int()` calls.
_time_ns: Final = time.time_ns


def _decimal(n: int) -> str:
    return _DECIMAL[n] if 0 <= n < 1000 else str(n)


def _millis(micros: int) -> str:
    """Microseconds as milliseconds with three decimals, as JSON's number."""
    whole = micros // 1000
    return f"{_DECIMAL[whole] if whole < 1000 else whole}.{_THREE[micros - whole * 1000]}"


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
        self._agents: dict[bytes | None, str] = {}
        # id(principal) -> (principal, its fields): see _who.
        self._callers: dict[int, tuple[Principal, str]] = {}
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

    def _agent(self, user_agent: bytes | None) -> str:
        """A user agent as a JSON string (or null), encoded once for the agents seen lately.
        Read as Latin-1, as HTTP's header values are. Only agents of up to 256 bytes are kept:
        a client chooses them, and a head may hold one of 32 KiB."""
        agent = _json_str(user_agent.decode("latin-1")) if user_agent else "null"
        if user_agent is None or len(user_agent) <= _AGENT_KEPT:
            agents = self._agents
            if len(agents) >= _NAME_CACHE:
                agents.clear()
            agents[user_agent] = agent
        return agent

    def _who(self, principal: Principal) -> str:
        """The three ids' fields of a caller, made once for each principal seen lately (the
        auth core's validation cache hands out the same principal for a credential, so it is
        found by identity; the principal is kept with its fields, so its id is not reused
        while it is in here). They are the auth core's own ids ([a-z]+_[0-9a-f]+: a user's
        from the `sub` of a token it signed, a tenant's and a credential's from its database):
        nothing to escape."""
        callers = self._callers
        if len(callers) > _NAME_CACHE:
            callers.clear()
        user_id, tenant_id = principal.user_id, principal.tenant_id
        credential_id = principal.credential_id
        user = "null" if user_id is None else f'"{user_id}"'
        tenant = "null" if tenant_id is None else f'"{tenant_id}"'
        credential = "null" if credential_id is None else f'"{credential_id}"'
        who = f'"user_id":{user},"tenant_id":{tenant},"credential_id":{credential}'
        callers[id(principal)] = (principal, who)
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
        duration_us: int,
        route: str,
        upstream: str | None,
        target: str | None,
        upstream_status: int,
        upstream_us: int,
        bytes_in: int,
        bytes_out: int | None,
        auth: str,
        principal: Principal | None,
        error: str | None,
        user_agent: bytes | None,
    ) -> None:
        """One request's line. Durations in microseconds; `target` None: no upstream was
        tried; `upstream_status` 0: none answered (its duration is then not logged);
        `bytes_out` None: not known; `user_agent` as the client sent it."""
        if not self.enabled:
            return
        # Request and trace ids ([A-Za-z0-9._-], hex), addresses, llhttp's method names, auth
        # kinds, error codes and the auth core's ids need no escaping; route, upstream and
        # target names and user agents are encoded once; a path may need it.
        now = _time_ns()
        second = now // 1_000_000_000
        if second != self._second:
            self._new_second(second)
        millisecond = _THREE[now // 1_000_000 - second * 1000]
        names = self._names
        route_json = names.get(route) or self._name(route)
        upstream_json = self._name(upstream) if upstream is None else names.get(upstream)
        if upstream_json is None:
            upstream_json = self._name(upstream)
        agent = self._agents.get(user_agent)
        if agent is None:
            agent = self._agent(user_agent)
        if principal is None:
            who = _NOBODY
        else:
            known = self._callers.get(id(principal))
            who = known[1] if known is not None and known[0] is principal else self._who(principal)
        # Figures below 1000 looked up, not formatted (their table's comment says why).
        whole = duration_us // 1000
        duration_ms = (
            f"{_DECIMAL[whole] if whole < 1000 else whole}.{_THREE[duration_us - whole * 1000]}"
        )
        if (
            target is not None
            and upstream_status
            and trace_id is not None
            and error is None
            and bytes_out is not None
            and status < 1000
            and upstream_status < 1000
            and '"' not in path
            and "\\" not in path
        ):
            # A request the upstream answered, the usual line: built in one go, no part of it
            # made apart (each made apart is a string allocated and copied once more).
            target_json = names.get(target) or self._name(target)
            whole = upstream_us // 1000
            line = (
                f'{self._ts_prefix}{millisecond}Z",'
                f'"request_id":"{request_id}","trace_id":"{trace_id}","remote":"{remote}",'
                f'"method":"{method}","path":"{path}","status":{_DECIMAL[status]},'
                f'"duration_ms":{duration_ms},"route":{route_json},'
                f'"upstream":{upstream_json},"upstream_addr":{target_json},'
                f'"upstream_status":{_DECIMAL[upstream_status]},'
                f'"upstream_ms":{_DECIMAL[whole] if whole < 1000 else whole}.'
                f"{_THREE[upstream_us - whole * 1000]},"
                f'"bytes_in":{_DECIMAL[bytes_in] if bytes_in < 1000 else bytes_in},'
                f'"bytes_out":{_DECIMAL[bytes_out] if bytes_out < 1000 else bytes_out},'
                f'"auth":"{auth}",{who},"error":null,"user_agent":{agent}}}\n'
            )
        else:
            if target is None:
                upstream_part = _NO_UPSTREAM
            elif upstream_status:
                upstream_part = (
                    f"{names.get(target) or self._name(target)},"
                    f'"upstream_status":{_decimal(upstream_status)},'
                    f'"upstream_ms":{_millis(upstream_us)}'
                )
            else:
                upstream_part = (names.get(target) or self._name(target)) + _NO_ANSWER
            path_json = _json_str(path) if '"' in path or "\\" in path else '"' + path + '"'
            trace = "null" if trace_id is None else '"' + trace_id + '"'
            code = "null" if error is None else '"' + error + '"'
            sent = "null" if bytes_out is None else _decimal(bytes_out)
            line = (
                f'{self._ts_prefix}{millisecond}Z",'
                f'"request_id":"{request_id}","trace_id":{trace},"remote":"{remote}",'
                f'"method":"{method}","path":{path_json},"status":{_decimal(status)},'
                f'"duration_ms":{duration_ms},"route":{route_json},'
                f'"upstream":{upstream_json},"upstream_addr":{upstream_part},'
                f'"bytes_in":{_decimal(bytes_in)},"bytes_out":{sent},"auth":"{auth}",{who},'
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
