"""Parsing of the human units used in configuration: durations, byte sizes, booleans, instants.

Parsed once at load time into floats (seconds) and ints (bytes); nothing here runs per request.
It lives in the auth core because the gateway may import the auth core and not the reverse;
both use it.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration(value: object) -> float:
    """Seconds from `30`, `2.5`, `500ms`, `2s`, `15m`, `1h` or `7d`; raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (use e.g. 500ms, 2s, 15m, 1h, 7d)")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"{value!r} is not a duration (use e.g. 500ms, 2s, 15m, 1h, 7d)")
        seconds = float(match.group(1)) * _DURATION_FACTORS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{value!r} must be a positive, finite duration")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from `1024`, `512k`, `10m` or `2g` (binary multiples); raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size (use e.g. 512k, 10m, 2g)")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if match is None:
            raise ValueError(f"{value!r} is not a size (use e.g. 512k, 10m, 2g)")
        unit = (match.group(2) or "").lower()[:1]
        size = int(match.group(1)) * _SIZE_FACTORS[unit]
    if size <= 0:
        raise ValueError(f"{value!r} must be a positive size")
    return size


def parse_boolean(value: str) -> bool:
    """true/false, yes/no, on/off, 1/0; raises ValueError."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def parse_instant(value: str) -> float:
    """Unix seconds from an RFC 3339 date-time with its offset (`2027-01-31T00:00:00Z`);
    raises ValueError."""
    text = value.strip()
    try:
        # `T` or a space between date and time, as RFC 3339 section 5.6 allows.
        parsed = datetime.fromisoformat(text) if len(text) >= 20 and text[10] in "Tt " else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(
            f"{value!r} is not an RFC 3339 date-time with an offset (e.g. 2027-01-31T00:00:00Z)"
        )
    return parsed.timestamp()
