"""What every validator refuses although the token's signature and expiry are fine:
revoked sessions, revoked tokens (by jti), and users whose tokens issued before a moment
are void (password reset, deletion, an admin's "revoke every session").

Each worker keeps the set in memory and checks it on every request (a few dict look-ups);
it follows the `revocations` table by id, so a revocation written by any worker or replica
reaches it at the next sync. Entries leave once nothing they name can still be valid.
"""

from __future__ import annotations

import time

from auth_core.store.records import Revocation, Revocations

SESSION = "session"
TOKEN = "token"  # noqa: S105 - a revocation kind, not a secret
USER = "user"


class RevocationSet:
    """The revocations in force, and how far into the table this worker has read."""

    def __init__(self) -> None:
        self.sessions: dict[str, float] = {}  # sid -> when the entry can go
        self.tokens: dict[str, float] = {}  # jti -> when the entry can go
        self.users: dict[str, tuple[float, float]] = {}  # user -> (revoked at, can go)
        self.last_id = 0

    def apply(self, revocation: Revocation) -> None:
        if revocation.kind == SESSION:
            self.sessions[revocation.value] = revocation.expires_at
        elif revocation.kind == TOKEN:
            self.tokens[revocation.value] = revocation.expires_at
        elif revocation.kind == USER:
            known = self.users.get(revocation.value)
            if known is None or known[0] < revocation.at:
                self.users[revocation.value] = (revocation.at, revocation.expires_at)
        self.last_id = max(self.last_id, revocation.id)

    def refuses(
        self, user_id: str, session_id: str | None, token_id: str | None, issued_at: float
    ) -> bool:
        if session_id is not None and session_id in self.sessions:
            return True
        if token_id is not None and token_id in self.tokens:
            return True
        revoked = self.users.get(user_id)
        return revoked is not None and issued_at <= revoked[0]

    async def sync(self, revocations: Revocations) -> int:
        """Read what was revoked since the last sync; how many entries came."""
        fresh = await revocations.since(self.last_id)
        for revocation in fresh:
            self.apply(revocation)
        return len(fresh)

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.sessions = {key: until for key, until in self.sessions.items() if until > now}
        self.tokens = {key: until for key, until in self.tokens.items() if until > now}
        self.users = {key: entry for key, entry in self.users.items() if entry[1] > now}
