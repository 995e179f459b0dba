"""The audit log as the auth core's services write it: an entry now, or one off the
request's path for refusals, which a flood could send by the thousand."""

from __future__ import annotations

from typing import Any

from auth_core.background import Background
from auth_core.calls import CallInfo
from auth_core.store.records import Store

MAX_PENDING_AUDIT = 1000  # entries written off the path at most waiting at once


class AuditTrail:
    def __init__(self, store: Store, background: Background) -> None:
        self._records = store.audit
        self._background = background

    async def append(
        self,
        event: str,
        outcome: str,
        call: CallInfo,
        *,
        user_id: str | None = None,
        actor_id: str | None = None,
        **detail: Any,
    ) -> None:
        await self._records.append(
            event,
            outcome,
            user_id=user_id,
            actor_id=actor_id,
            request_id=call.request_id,
            ip=call.ip,
            detail=detail or None,
        )

    def later(
        self,
        event: str,
        outcome: str,
        call: CallInfo,
        *,
        user_id: str | None = None,
        **detail: Any,
    ) -> bool:
        """Write the entry without waiting for it; False when too many are already waiting
        (any background work counts) and this one is dropped."""
        if len(self._background) >= MAX_PENDING_AUDIT:
            return False
        self._background.run(self.append(event, outcome, call, user_id=user_id, **detail))
        return True
