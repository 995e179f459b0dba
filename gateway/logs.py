"""Application logs as one JSON object a line on stderr (access logs are separate)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time


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
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp").setLevel(max(logging.WARNING, root.level))
    logging.Formatter.converter = time.gmtime
