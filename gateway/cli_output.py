"""How the administration commands print what they list or show: with --json exactly one JSON
object on stdout, otherwise a table (list) or `field: value` lines (show) for people.

Both are built from the records' `public()` documents, which never hold a secret or a hash.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

# Fields that hold epoch seconds; people read them as UTC times.
_TIMES = frozenset(
    {"created_at", "updated_at", "expires_at", "last_used_at", "revoked_at", "refreshed_at"}
    | {"banned_at", "until"}
)


def cell(field: str, value: Any) -> str:
    if value is None:
        return "-"
    if field in _TIMES and isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value) or "-"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Left-aligned columns under upper-case headers, two spaces apart."""
    lines = [[column.upper() for column in columns]]
    lines += [[cell(column, row.get(column)) for column in columns] for row in rows]
    widths = [max(len(line[index]) for line in lines) for index in range(len(columns))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def print_list(
    as_json: bool, plural: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]
) -> None:
    if as_json:
        print(json.dumps({plural: list(rows)}))
    elif not rows:
        print(f"no {plural.replace('_', ' ')}")
    else:
        print(table(rows, columns))


def print_one(as_json: bool, document: dict[str, Any]) -> None:
    if as_json:
        print(json.dumps(document))
        return
    width = max(len(field) for field in document)
    for field, value in document.items():
        print(f"{field.ljust(width)}  {cell(field, value)}")
