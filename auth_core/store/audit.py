"""The audit log's records."""

from __future__ import annotations

import json
import time
from typing import Any

from auth_core.store.base import Database


class AuditTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(
        self,
        event: str,
        outcome: str,
        *,
        user_id: str | None = None,
        actor_id: str | None = None,
        request_id: str | None = None,
        ip: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await self.db.execute(
            "INSERT INTO audit_log (at, event, outcome, user_id, actor_id, request_id, ip, detail) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            time.time(),
            event,
            outcome,
            user_id,
            actor_id,
            request_id,
            ip,
            json.dumps(detail, separators=(",", ":")) if detail else None,
        )

    async def list(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        user_id: str | None = None,
        event: str | None = None,
    ) -> list[dict[str, Any]]:
        conditions = ["id < $1"]
        values: list[Any] = [before if before is not None else 2**62]
        if user_id is not None:
            values.append(user_id)
            conditions.append(f"(user_id = ${len(values)} OR actor_id = ${len(values)})")
        if event is not None:
            values.append(event)
            conditions.append(f"event = ${len(values)}")
        values.append(limit)
        rows = await self.db.fetch(
            "SELECT id, at, event, outcome, user_id, actor_id, request_id, ip, detail "
            f"FROM audit_log WHERE {' AND '.join(conditions)} "
            f"ORDER BY id DESC LIMIT ${len(values)}",
            *values,
        )
        return [
            {**row, "id": int(row["id"]), "detail": json.loads(row["detail"] or "null")}
            for row in rows
        ]
