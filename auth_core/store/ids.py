"""Record ids."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """An opaque id: a type prefix and 20 random hex characters (80 bits)."""
    return f"{prefix}_{secrets.token_hex(10)}"
