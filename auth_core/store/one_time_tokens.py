"""Records of one-time tokens (e-mail verification, password reset), consumed atomically."""

from __future__ import annotations

import time

from auth_core.store.base import Database


class OneTimeTokenTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, kind: str, user_id: str, token_hash: str, lifetime: float) -> None:
        now = time.time()
        await self.db.execute(
            "INSERT INTO one_time_tokens (token_hash, kind, user_id, created_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            token_hash,
            kind,
            user_id,
            now,
            now + lifetime,
        )

    async def consume(self, kind: str, token_hash: str) -> str | None:
        """The user the token was for, if it is of `kind`, unexpired and unused; used now."""
        value = await self.db.fetchval(
            "UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND kind = $3 "
            "AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
            time.time(),
            token_hash,
            kind,
        )
        return None if value is None else str(value)

    async def consume_all(self, kind: str, token_hash: str) -> str | None:
        """Like `consume`, and every other unused token of that kind and user is used with it
        (a password reset voids the older reset mails). One UPDATE: of two tokens of a user
        presented at once, only one wins, in both databases."""
        rows = await self.db.fetch(
            "UPDATE one_time_tokens SET used_at = $1 WHERE kind = $3 AND used_at IS NULL "
            "AND user_id = (SELECT user_id FROM one_time_tokens WHERE token_hash = $2 "
            "AND kind = $3 AND used_at IS NULL AND expires_at > $1) "
            "RETURNING token_hash, user_id",
            time.time(),
            token_hash,
            kind,
        )
        for row in rows:
            if row["token_hash"] == token_hash:
                return str(row["user_id"])
        return None

    async def void(self, kind: str, user_id: str) -> int:
        """Mark every unused token of that kind and user as used; how many there were."""
        return await self.db.execute(
            "UPDATE one_time_tokens SET used_at = $1 WHERE kind = $2 AND user_id = $3 "
            "AND used_at IS NULL",
            time.time(),
            kind,
            user_id,
        )
