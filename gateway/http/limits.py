"""What a client may send and how slowly: the HTTP server's limits (GATEWAY_* settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """What a client may send and how slowly (GATEWAY_* settings)."""

    max_head_size: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    body_timeout: float = 60.0
    max_connections_per_address: int = 256  # open at once from one peer address; 0: no limit
