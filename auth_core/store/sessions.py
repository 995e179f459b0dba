"""Records of sessions and their refresh tokens (rotated; a reused token is spent once)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from auth_core.models import Session
from auth_core.store.base import Database
from auth_core.store.ids import new_id

_SESSION_COLUMNS = "id, user_id, created_at, expires_at, refreshed_at, revoked_at, ip, user_agent"


class SessionTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, user_id: str, lifetime: float, ip: str | None, user_agent: str | None
    ) -> Session:
        now = time.time()
        row = await self.db.fetchrow(
            f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES "
            "($1, $2, $3, $4, NULL, NULL, $5, $6) "
            f"RETURNING {_SESSION_COLUMNS}",
            new_id("ses"),
            user_id,
            now,
            now + lifetime,
            ip,
            (user_agent or "")[:512] or None,
        )
        assert row is not None
        return Session.from_row(row)

    async def get(self, session_id: str) -> Session | None:
        row = await self.db.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = $1", session_id
        )
        return None if row is None else Session.from_row(row)

    async def live(self, user_id: str | None = None) -> list[Session]:
        """Sessions neither revoked nor expired, oldest first; of one user when given."""
        if user_id is None:
            rows = await self.db.fetch(
                f"SELECT {_SESSION_COLUMNS} FROM sessions "
                "WHERE revoked_at IS NULL AND expires_at > $1 ORDER BY created_at, id",
                time.time(),
            )
        else:
            rows = await self.db.fetch(
                f"SELECT {_SESSION_COLUMNS} FROM sessions "
                "WHERE revoked_at IS NULL AND expires_at > $1 AND user_id = $2 "
                "ORDER BY created_at, id",
                time.time(),
                user_id,
            )
        return [Session.from_row(row) for row in rows]

    async def refreshed(self, session_id: str, expires_at: float) -> None:
        await self.db.execute(
            "UPDATE sessions SET refreshed_at = $1, expires_at = $2 WHERE id = $3",
            time.time(),
            expires_at,
            session_id,
        )

    async def revoke(self, session_id: str, reason: str) -> bool:
        """True when the session was live and is now revoked."""
        changed = await self.db.execute(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 "
            "WHERE id = $3 AND revoked_at IS NULL",
            time.time(),
            reason,
            session_id,
        )
        return changed > 0

    async def revoke_all(self, user_id: str, reason: str) -> list[str]:
        """Revoke every live session of a user; their ids."""
        rows = await self.db.fetch(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 "
            "WHERE user_id = $3 AND revoked_at IS NULL RETURNING id",
            time.time(),
            reason,
            user_id,
        )
        return [row["id"] for row in rows]


@dataclass(frozen=True, slots=True)
class Spent:
    """What spending a refresh token found: `ok`, `reused`, `expired` or `unknown`."""

    state: str
    session_id: str | None = None


class RefreshTokenTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, token_hash: str, session_id: str, expires_at: float) -> None:
        await self.db.execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) "
            "VALUES ($1, $2, $3, $4)",
            token_hash,
            session_id,
            time.time(),
            expires_at,
        )

    async def spend(self, token_hash: str) -> Spent:
        """Mark the token used, if nobody did before: of two concurrent spends, one wins."""
        now = time.time()
        session_id = await self.db.fetchval(
            "UPDATE refresh_tokens SET used_at = $1 "
            "WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING session_id",
            now,
            token_hash,
        )
        if session_id is not None:
            return Spent("ok", session_id)
        row = await self.db.fetchrow(
            "SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1", token_hash
        )
        if row is None:
            return Spent("unknown")
        if row["used_at"] is not None:
            return Spent("reused", row["session_id"])
        return Spent("expired", row["session_id"])

    async def owner(self, token_hash: str) -> tuple[str, str] | None:
        """(session id, user id) of a refresh token, spent or not."""
        row = await self.db.fetchrow(
            "SELECT s.id AS session_id, s.user_id AS user_id FROM refresh_tokens r "
            "JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
            token_hash,
        )
        return None if row is None else (row["session_id"], row["user_id"])

    async def extend(self, session_id: str, expires_at: float) -> None:
        """The session's unspent refresh tokens live until `expires_at`."""
        await self.db.execute(
            "UPDATE refresh_tokens SET expires_at = $1 WHERE session_id = $2 AND used_at IS NULL",
            expires_at,
            session_id,
        )

    async def forget_session(self, session_id: str) -> None:
        await self.db.execute("DELETE FROM refresh_tokens WHERE session_id = $1", session_id)
