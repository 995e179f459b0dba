"""Request ids and W3C trace context (docs/upstream-services.md): kept when valid,
made when not."""

from __future__ import annotations

import os
import random
import re
import secrets
from binascii import hexlify as _hexlify
from typing import Final

# Final: compiled with mypyc, a Final module name is a C static; any other is a look-up in the
# module's dict each time it is read (about 130 instructions, several a request).
_REQUEST_ID: Final = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_TRACEPARENT: Final = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_ZERO_TRACE: Final = b"0" * 32
_ZERO_SPAN: Final = b"0" * 16
_ONE_SPAN: Final = b"0" * 15 + b"1"  # a span id must not be zero (W3C Trace Context)

# Request ids are unguessable (docs/upstream-services.md): a client must not be
# able to predict the id of someone else's request (they key audit entries, logs, support
# questions). Each is 16 bytes from the OS's CSPRNG, as hex; os.urandom is called for a batch
# of ids at a time, so that an id costs a list pop, not a system call. Forked workers drop
# the batch they inherited: two processes must never hand out the same ids.
ID_BYTES = 16
_BATCH: Final = 256
_ids: Final[list[str]] = []
_random: Final = random.Random(secrets.randbits(64))  # noqa: S311 - trace ids are not secrets
# New traceparents are made a batch at a time too, from one draw of random bytes: a request
# then costs a list pop where one getrandbits, to_bytes and hexlify a request cost about 3,000
# instructions in the compiled build (callgrind, bench/README.md).
_traces: Final[list[bytes]] = []


def _refill() -> None:
    text = os.urandom(ID_BYTES * _BATCH).hex()
    size = 2 * ID_BYTES
    _ids.extend([text[start : start + size] for start in range(0, len(text), size)])


def _new_traces() -> None:
    # 24 random bytes a traceparent: a 16-byte trace id and an 8-byte span id, as hex.
    ids = _hexlify(_random.randbytes(24 * _BATCH))
    for start in range(0, len(ids), 48):
        span = ids[start + 32 : start + 48]
        _traces.append(
            b"".join(
                (
                    b"00-",
                    ids[start : start + 32],
                    b"-",
                    _ONE_SPAN if span == _ZERO_SPAN else span,
                    b"-01",
                )
            )
        )


def _reseed() -> None:
    _ids.clear()
    _traces.clear()
    _random.seed(secrets.randbits(64))


os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A new unguessable id: 32 hex characters (128 random bits)."""
    if not _ids:
        _refill()
    return _ids.pop()


def new_request_id() -> str:
    return new_id()


def request_id_from(value: bytes | None) -> str:
    """The client's X-Request-Id if it is 1-64 of [A-Za-z0-9._-], else a new one."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value.decode()
    return new_id()


def traceparent_from(value: bytes | None) -> bytes:
    """The client's traceparent if valid (version 00, non-zero ids), else a new trace."""
    if value is not None:
        match = _TRACEPARENT.fullmatch(value)
        if match and match.group(1) != _ZERO_TRACE and match.group(2) != _ZERO_SPAN:
            return value
    if not _traces:
        _new_traces()
    return _traces.pop()
