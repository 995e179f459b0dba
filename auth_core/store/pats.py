"""Records of users' personal access tokens (migration 0002): only their hashes are stored."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from auth_core.models import Pat
from auth_core.store.base import Database, json_list
from auth_core.store.ids import new_id

_PAT_COLUMNS = "id, user_id, name, prefix, scopes, created_at, expires_at, last_used_at"


class PatTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        user_id: str,
        token_hash: str,
        prefix: str,
        *,
        name: str,
        scopes: Sequence[str],
        expires_at: float | None,
    ) -> Pat:
        row = await self.db.fetchrow(
            f"INSERT INTO pats ({_PAT_COLUMNS}, token_hash) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, NULL, $8) "
            f"RETURNING {_PAT_COLUMNS}",
            new_id("pat"),
            user_id,
            name,
            prefix,
            json_list(scopes),
            time.time(),
            expires_at,
            token_hash,
        )
        assert row is not None
        return Pat.from_row(row)

    async def insert_imported(
        self,
        user_id: str,
        token_hash: str,
        prefix: str,
        *,
        name: str,
        created_at: float,
        expires_at: float | None,
        last_used_at: float | None,
    ) -> Pat:
        """A token another backend made (`gateway pats import`), with its own dates."""
        row = await self.db.fetchrow(
            f"INSERT INTO pats ({_PAT_COLUMNS}, token_hash) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            f"RETURNING {_PAT_COLUMNS}",
            new_id("pat"),
            user_id,
            name,
            prefix,
            json_list(()),
            created_at,
            expires_at,
            last_used_at,
            token_hash,
        )
        assert row is not None
        return Pat.from_row(row)

    async def owner_of(self, token_hash: str) -> str | None:
        """The user id of the token with this hash, or None."""
        value = await self.db.fetchval("SELECT user_id FROM pats WHERE token_hash = $1", token_hash)
        return None if value is None else str(value)

    async def by_hash(self, token_hash: str) -> Pat | None:
        row = await self.db.fetchrow(
            f"SELECT {_PAT_COLUMNS} FROM pats WHERE token_hash = $1", token_hash
        )
        return None if row is None else Pat.from_row(row)

    async def of_user(self, user_id: str) -> list[Pat]:
        rows = await self.db.fetch(
            f"SELECT {_PAT_COLUMNS} FROM pats WHERE user_id = $1 ORDER BY created_at, id",
            user_id,
        )
        return [Pat.from_row(row) for row in rows]

    async def every(self) -> list[Pat]:
        """Every user's tokens (the CLI's `pat list`)."""
        rows = await self.db.fetch(f"SELECT {_PAT_COLUMNS} FROM pats ORDER BY created_at, id")
        return [Pat.from_row(row) for row in rows]

    async def get(self, pat_id: str) -> Pat | None:
        row = await self.db.fetchrow(f"SELECT {_PAT_COLUMNS} FROM pats WHERE id = $1", pat_id)
        return None if row is None else Pat.from_row(row)

    async def count(self, user_id: str) -> int:
        return int(
            await self.db.fetchval("SELECT COUNT(*) FROM pats WHERE user_id = $1", user_id) or 0
        )

    async def delete(self, user_id: str, pat_id: str) -> bool:
        """Delete one of the user's tokens; False when they have no such token."""
        changed = await self.db.execute(
            "DELETE FROM pats WHERE id = $1 AND user_id = $2", pat_id, user_id
        )
        return changed > 0

    async def touch(self, used: Iterable[tuple[str, float]]) -> None:
        for pat_id, at in used:
            await self.db.execute(
                "UPDATE pats SET last_used_at = $1 "
                "WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                at,
                pat_id,
            )
