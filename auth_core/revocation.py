"""What every validator refuses although the token's signature and expiry are fine:
revoked sessions, revoked tokens (by jti), and users whose tokens issued before a moment
are void (password reset, deletion, an admin's "revoke every session").

Each worker keeps the set in memory and checks it on every request (a few dict look-ups);
it follows the `revocations` table by id, so a revocation written by any worker or replica
reaches it at the next sync. Entries leave once nothing they name can still be valid.

Ids are handed out when a row is inserted but become visible when its transaction commits, so
id 7 can appear after id 8 was read (two replicas revoking at once). A hole in the ids read is
remembered and read again until it fills or is old enough to be a rolled-back insert.
"""

from __future__ import annotations

import time

from auth_core.store.revocations import Revocation, RevocationTable

MAX_GAPS = 1000  # holes remembered from one read, at most
FIRST_READ_WINDOW = 100
GAP_PATIENCE = 60.0  # seconds a hole in the ids is waited for (longer than any revoking write)
MAX_LAGS = 10_000  # lags kept between two reads of them (the metrics take them every second)
SESSION = "session"
TOKEN = "token"  # noqa: S105 - a revocation kind, not a secret
USER = "user"
# Kinds that refuse nothing by themselves but void what workers cached of a key or PAT
# ("credential": its id), a tenant (whitelists) or, with USER, a user (roles, PATs).
CREDENTIAL = "credential"
TENANT = "tenant"
# A client address banned until the row's expires_at, and a ban lifted (value: the address).
BAN = "ban"
UNBAN = "unban"
_VOIDS_CACHES = frozenset({CREDENTIAL, TENANT, USER})


class RevocationSet:
    """The revocations in force, and how far into the table this worker has read."""

    def __init__(self) -> None:
        self.sessions: dict[str, float] = {}  # sid -> when the entry can go
        self.tokens: dict[str, float] = {}  # jti -> when the entry can go
        self.users: dict[str, tuple[float, float]] = {}  # user -> (revoked at, can go)
        self.last_id = 0
        self.gaps: dict[int, float] = {}  # ids not seen below last_id -> when first missed
        self.bans: dict[str, tuple[float, float]] = {}  # address -> (banned at, until)
        self.unbanned: dict[str, float] = {}  # address -> lifted at (older bans stay lifted)
        # Bumped by every revocation that voids cached credentials and tenant policies: an
        # entry cached under an older generation is read again (see tenancy and keys).
        self.generation = 0
        # The newest id of such a revocation applied here: an entry of the shared (Redis)
        # cache read from the database when every id up to its epoch was known is still good
        # while this is not above the epoch (see shared_cache).
        self.last_voiding_id = 0
        self._applied_here: set[int] = set()  # ids this worker wrote and applied, not yet read
        # Seconds from each revocation written elsewhere to its read here (its `at` is the
        # writer's clock), for the metrics; the rows of the first read are the past, not lag.
        self.lags: list[float] = []

    def apply(self, revocation: Revocation, *, read: bool = True) -> None:
        """Put a revocation in force. `read=False` for one this worker wrote itself: in force
        at once, but the table is still to be read up to it (rows of other workers may sit just
        below its id), so how far the table was read does not move. When that read brings the
        row back, its effects are applied again (they are idempotent) but caches are not voided a
        second time."""
        first_time = revocation.id not in self._applied_here
        if read:
            self._applied_here.discard(revocation.id)
        else:
            self._applied_here.add(revocation.id)
        if revocation.kind == SESSION:
            self.sessions[revocation.value] = revocation.expires_at
        elif revocation.kind == TOKEN:
            self.tokens[revocation.value] = revocation.expires_at
        elif revocation.kind == USER:
            known = self.users.get(revocation.value)
            if known is None or known[0] < revocation.at:
                self.users[revocation.value] = (revocation.at, revocation.expires_at)
        elif revocation.kind == BAN:
            if revocation.at > self.unbanned.get(revocation.value, 0.0):
                known = self.bans.get(revocation.value)
                if known is None or known[0] < revocation.at:
                    self.bans[revocation.value] = (revocation.at, revocation.expires_at)
        elif revocation.kind == UNBAN:
            self.unbanned[revocation.value] = max(
                revocation.at, self.unbanned.get(revocation.value, 0.0)
            )
            known = self.bans.get(revocation.value)
            if known is not None and known[0] <= revocation.at:
                del self.bans[revocation.value]
        if revocation.kind in _VOIDS_CACHES:
            if first_time:
                self.generation += 1
            # Known either way: shared entries read before it must not be taken from now on.
            self.last_voiding_id = max(self.last_voiding_id, revocation.id)
        if read:
            self.last_id = max(self.last_id, revocation.id)

    @property
    def settled_id(self) -> int:
        """Every revocation with an id up to this one is known here (none is still in flight
        below it): what a read from the database made now reflects, at least."""
        return min(self.gaps) - 1 if self.gaps else self.last_id

    def refuses(
        self, user_id: str, session_id: str | None, token_id: str | None, issued_at: float
    ) -> bool:
        if session_id is not None and session_id in self.sessions:
            return True
        if token_id is not None and token_id in self.tokens:
            return True
        revoked = self.users.get(user_id)
        return revoked is not None and issued_at <= revoked[0]

    async def sync(self, revocations: RevocationTable, now: float | None = None) -> int:
        """Read what was revoked since the last sync; how many new entries came."""
        now = time.monotonic() if now is None else now
        self.gaps = {gap: since for gap, since in self.gaps.items() if now - since < GAP_PATIENCE}
        floor = min(self.gaps) - 1 if self.gaps else self.last_id
        first_read = self.last_id == 0 and not self.gaps
        fresh = 0
        rows = await revocations.since(floor)
        # On the first read most holes are the past (purged or expired rows): only the last
        # FIRST_READ_WINDOW ids below the newest can be writes still in flight.
        if self.last_id:
            expected = self.last_id + 1
        elif rows:
            expected = max(1, rows[-1].id - FIRST_READ_WINDOW)
        else:
            expected = 1
        for revocation in rows:
            if revocation.id > self.last_id:
                if revocation.id - expected <= MAX_GAPS:
                    for missing in range(expected, revocation.id):
                        self.gaps.setdefault(missing, now)
                expected = max(expected, revocation.id + 1)
            elif revocation.id not in self.gaps:
                continue  # read before
            self.gaps.pop(revocation.id, None)
            lagging = not first_read and revocation.id not in self._applied_here
            if lagging and len(self.lags) < MAX_LAGS:
                self.lags.append(max(0.0, time.time() - revocation.at))
            self.apply(revocation)
            fresh += 1
        return fresh

    def take_lags(self) -> list[float]:
        """The lags gathered since the last call."""
        taken, self.lags = self.lags, []
        return taken

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.sessions = {key: until for key, until in self.sessions.items() if until > now}
        self.tokens = {key: until for key, until in self.tokens.items() if until > now}
        self.users = {key: entry for key, entry in self.users.items() if entry[1] > now}
        self.bans = {key: entry for key, entry in self.bans.items() if entry[1] > now}
        self.unbanned = {key: at for key, at in self.unbanned.items() if at > now - 86400.0}

    def banned_for(self, address: str, now: float) -> float:
        """Seconds the address stays banned (0: it is not)."""
        entry = self.bans.get(address)
        return 0.0 if entry is None else max(0.0, entry[1] - now)
