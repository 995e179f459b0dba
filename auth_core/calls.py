"""Where a call to the auth core comes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Where a call comes from, for the audit log and the throttles."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
