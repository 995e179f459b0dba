"""Records of tenants: their origins and IP whitelists (migration 0002)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from auth_core.models import Tenant
from auth_core.store.base import Database, json_list
from auth_core.store.ids import new_id

_TENANT_COLUMNS = "id, name, origins, ip_whitelist, created_at, updated_at"


class TenantTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, name: str, origins: Sequence[str], ip_whitelist: Sequence[str]
    ) -> Tenant:
        now = time.time()
        row = await self.db.fetchrow(
            f"INSERT INTO tenants ({_TENANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5) "
            f"RETURNING {_TENANT_COLUMNS}",
            new_id("ten"),
            name,
            json_list(origins),
            json_list(ip_whitelist),
            now,
        )
        assert row is not None
        return Tenant.from_row(row)

    async def get(self, tenant_id: str) -> Tenant | None:
        row = await self.db.fetchrow(
            f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE id = $1", tenant_id
        )
        return None if row is None else Tenant.from_row(row)

    async def by_name(self, name: str) -> Tenant | None:
        """The tenant of that name, whatever its case (names are unique so: migration 0004)."""
        row = await self.db.fetchrow(
            f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE lower(name) = lower($1)", name
        )
        return None if row is None else Tenant.from_row(row)

    async def all_origins(self) -> list[tuple[str, list[str]]]:
        """(tenant id, origins) of every tenant: for answering CORS preflights."""
        rows = await self.db.fetch("SELECT id, origins FROM tenants")
        return [(row["id"], json.loads(row["origins"])) for row in rows]

    async def list(self, *, limit: int = 100, offset: int = 0) -> list[Tenant]:
        rows = await self.db.fetch(
            f"SELECT {_TENANT_COLUMNS} FROM tenants ORDER BY created_at, id LIMIT $1 OFFSET $2",
            limit,
            offset,
        )
        return [Tenant.from_row(row) for row in rows]

    async def update(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        origins: Sequence[str] | None = None,
        ip_whitelist: Sequence[str] | None = None,
    ) -> Tenant | None:
        assignments: list[str] = []
        values: list[Any] = []
        for column, value in (
            ("name", name),
            ("origins", json_list(origins)),
            ("ip_whitelist", json_list(ip_whitelist)),
        ):
            if value is not None:
                values.append(value)
                assignments.append(f"{column} = ${len(values)}")
        values.append(time.time())
        assignments.append(f"updated_at = ${len(values)}")
        values.append(tenant_id)
        row = await self.db.fetchrow(
            f"UPDATE tenants SET {', '.join(assignments)} WHERE id = ${len(values)} "
            f"RETURNING {_TENANT_COLUMNS}",
            *values,
        )
        return None if row is None else Tenant.from_row(row)
