"""Request ids and W3C trace context (SPEC section 7): kept when valid, made when not."""

from __future__ import annotations

import itertools
import os
import random
import re
import secrets

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_TRACEPARENT = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16

# Ids need to be unique, not secret: a random per-process prefix and a counter is unique
# across workers and restarts and costs a fraction of uuid4(). Forked workers start afresh.
_PREFIX = secrets.token_hex(6)
_COUNTER = itertools.count(1)
_random = random.Random(secrets.randbits(64))  # noqa: S311 - trace ids are not secrets


def _reseed() -> None:
    global _PREFIX, _COUNTER
    _PREFIX = secrets.token_hex(6)
    _COUNTER = itertools.count(1)
    _random.seed(secrets.randbits(64))


os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    # Not one f-string: compiled with mypyc, a format spec makes it format every part with a
    # str.format call.
    return _PREFIX + f"{next(_COUNTER):010x}"


def request_id_from(value: bytes | None) -> str:
    """The client's X-Request-Id if it is 1-64 of [A-Za-z0-9._-], else a new one."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value.decode()
    return new_request_id()


def traceparent_from(value: bytes | None) -> bytes:
    """The client's traceparent if valid (version 00, non-zero ids), else a new trace."""
    if value is not None:
        match = _TRACEPARENT.fullmatch(value)
        if match and match.group(1) != _ZERO_TRACE and match.group(2) != _ZERO_SPAN:
            return value
    return b"00-%032x-%016x-01" % (_random.getrandbits(128), _random.getrandbits(64) or 1)
