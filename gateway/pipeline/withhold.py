"""The `access_token` query parameter, a credential browsers use where they cannot set a header
(websockets), withheld from upstreams like the credential headers (docs/forwarding.md).

It leaves the query before the context is signed, so that the signature covers the path as
the upstream receives it. Only that parameter goes: every other byte of the query stays as the
client sent it (the query is never re-encoded).
"""

from __future__ import annotations

from urllib.parse import unquote_plus

ACCESS_TOKEN = "access_token"  # noqa: S105 - a parameter name, not a secret


def without_access_token(query: str) -> str:
    """`query` (`?` included, or empty) without its `access_token` parameters."""
    if ACCESS_TOKEN not in query and "%" not in query:
        return query  # no spelling of the name can be in it
    parts = query[1:].split("&")
    kept = [part for part in parts if not _names_access_token(part)]
    if len(kept) == len(parts):
        return query
    return "?" + "&".join(kept) if kept else ""


def _names_access_token(part: str) -> bool:
    # Decoded as the gateway decodes the query when it takes the token from it (parse_qsl), so
    # that `access%5Ftoken=...` is withheld as surely as it is read.
    name = part.split("=", 1)[0]
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    return name == ACCESS_TOKEN
