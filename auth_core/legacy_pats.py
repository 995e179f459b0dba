"""Personal access tokens another backend made, imported in their own format (`gateway pats
import`, docs/migration.md) and accepted on `auth: pat` routes until GATEWAY_LEGACY_PAT_UNTIL.

The old backend compared the presented string with the one it stored, so a token of its can
be any opaque string: what the gateway knows of one is its shape. A legacy token is an RFC
6750 `b64token` without a dot (a JWT always has two, so under `auth: any` the two kinds cannot
be mistaken for each other), of 16 to 512 characters, and not in any of the gateway's own
formats. Like every credential, only its SHA-256 is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from auth_core import credentials

MIN_LENGTH = 16
MAX_LENGTH = 512
# RFC 6750 section 2.1's b64token, less the dot.
_SHAPE = re.compile(r"[A-Za-z0-9\-_~+/]+=*")
_OURS = (credentials.API_KEY_PREFIX, credentials.PAT_PREFIX, credentials.SERVICE_TOKEN_PREFIX)


def legacy_shaped(token: str) -> bool:
    """Whether `token` can be a legacy token (its shape: whether one was imported is the
    database's to say)."""
    return (
        MIN_LENGTH <= len(token) <= MAX_LENGTH
        and not token.startswith(_OURS)
        and _SHAPE.fullmatch(token) is not None
    )


def display_prefix(token: str) -> str:
    """What is stored and shown of a legacy token: at most a quarter of it, and 8 characters
    (its length is not known to hold as much chance as a `gwp_` token's)."""
    return token[: min(8, len(token) // 4)]


def is_legacy(prefix: str) -> bool:
    """Whether a stored token (by its display prefix) is one of the old format."""
    return not prefix.startswith(credentials.PAT_PREFIX)


def retired(until: float) -> str:
    """The detail of the 401 that refuses a legacy token after the transition."""
    when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"this personal access token is in a retired format (accepted until {when}): "
        "create a new token (POST /api/v1/tokens)"
    )
