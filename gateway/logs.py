"""Application logs as one JSON object a line on stderr (access logs are separate).

Secrets never reach them, at any level (docs/operations/observability.md): the libraries that see
SQL
parameters, Redis commands or client requests are held at WARNING whatever GATEWAY_LOG_LEVEL
says (aiosqlite logs every statement with its parameters at DEBUG: password hashes, token
hashes, e-mail addresses), and whatever still looks like a credential is masked on its way out.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time

# Libraries whose DEBUG and INFO lines can carry what passed through them: statements and their
# parameters, Redis commands and replies, client requests. Only their warnings and errors show.
QUIET_LIBRARIES = ("aiosqlite", "asyncpg", "redis", "aiohttp", "asyncio")

# What a credential of ours looks like: keys, PATs, refresh and service tokens (`gw?_...`), JWTs,
# password hashes (argon2, bcrypt, pbkdf2). Opaque reset and verification tokens and passwords
# have no shape to find: keeping them out of messages is the code's job, and the tests'.
_SECRETS = re.compile(
    r"\bgw[a-z]_[0-9A-Za-z_-]{8,}"
    # A JWT starts a run of its characters (the look-behind) and its parts never give back
    # what they took (possessive): one pass over `eyJ-eyJ-...`, not one per `eyJ` in it.
    r"|(?<![0-9A-Za-z_-])eyJ[0-9A-Za-z_-]++\.[0-9A-Za-z_-]++\.[0-9A-Za-z_-]*+"
    r"|\$(?:argon2(?:id|i|d)|2[abxy]?|pbkdf2[0-9A-Za-z_-]*)\$[^\s'\",)}\]]+"
)


def redact(text: str) -> str:
    """`text` with anything shaped like a credential or a password hash masked."""
    return _SECRETS.sub("[redacted]", text)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "pid", "message"}`, plus the exception type when there is one.

    Tracebacks go to the log, never to a client; messages must not contain secrets.
    """

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": os.getpid(),
            "message": redact(record.getMessage()),
        }
        if record.exc_info and record.exc_info[0] is not None:
            data["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(data)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.Formatter.converter = time.gmtime
