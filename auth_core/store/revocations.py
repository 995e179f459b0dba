"""Records of revocations: sessions, token ids and users whose earlier tokens no longer count."""

from __future__ import annotations

import time
from dataclasses import dataclass

from auth_core.store.base import Database, Row


@dataclass(frozen=True, slots=True)
class Revocation:
    id: int
    kind: str  # "session", "token" (a jti) or "user" (tokens issued before `at`)
    value: str
    at: float
    expires_at: float

    @classmethod
    def from_row(cls, row: Row) -> Revocation:
        return cls(
            int(row["id"]), row["kind"], row["value"], float(row["at"]), float(row["expires_at"])
        )


class RevocationTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, kind: str, value: str, expires_at: float) -> Revocation:
        row = await self.db.fetchrow(
            "INSERT INTO revocations (kind, value, at, expires_at) VALUES ($1, $2, $3, $4) "
            "RETURNING id, kind, value, at, expires_at",
            kind,
            value,
            time.time(),
            expires_at,
        )
        assert row is not None
        return Revocation.from_row(row)

    async def since(self, last_id: int) -> list[Revocation]:
        """Revocations newer than `last_id` that still matter, oldest first."""
        rows = await self.db.fetch(
            "SELECT id, kind, value, at, expires_at FROM revocations "
            "WHERE id > $1 AND expires_at > $2 ORDER BY id",
            last_id,
            time.time(),
        )
        return [Revocation.from_row(row) for row in rows]

    async def of_kinds(self, kinds: tuple[str, ...]) -> list[Revocation]:
        """The live rows of some kinds, oldest first (bans, for the admin API)."""
        placeholders = ", ".join(f"${index}" for index in range(2, len(kinds) + 2))
        rows = await self.db.fetch(
            "SELECT id, kind, value, at, expires_at FROM revocations "
            f"WHERE expires_at > $1 AND kind IN ({placeholders}) ORDER BY id",
            time.time(),
            *kinds,
        )
        return [Revocation.from_row(row) for row in rows]

    async def purge(self) -> int:
        return await self.db.execute("DELETE FROM revocations WHERE expires_at <= $1", time.time())
