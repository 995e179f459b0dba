"""A worker's cache of one kind of credential (API keys, personal access tokens, service
tokens), written once for the three: what makes a request with a known credential one dict
look-up and a made-up one cheap (docs/authentication.md).

- Grants are kept by the presented string itself (a hit costs no checksum and no SHA-256;
  only a well-formed credential that the database knows is ever kept), each valid while no
  credential, tenant or user revocation arrived since it was read
  (`RevocationSet.generation`) and for `cache_ttl`.
- A malformed credential (prefix, length, alphabet, checksum) is refused without a look-up;
  an unknown well-formed one is refused from memory for UNKNOWN_TTL, so that a flood of
  made-up credentials does not become a flood of queries.
- Single flight: requests that miss on the same credential together (a cold start under
  load) wait for one read instead of each asking the database.
- A read goes through the shared tier (Redis) before the database; when the database is
  unavailable, a grant past its lifetime answers within the stale window.
- Both dicts are bounded: emptied when full.

The hit itself is written out in each kind's `authenticate` (the request path): one method
call more there would cost every request; everything after a miss is here.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from auth_core import credentials
from auth_core.audit import AuditTrail
from auth_core.calls import CallInfo
from auth_core.config import AuthSettings
from auth_core.errors import AuthUnavailable, GatewayError
from auth_core.models import Principal
from auth_core.revocation import RevocationSet
from auth_core.revoker import Revoker
from auth_core.shared_cache import Record, SharedCache
from auth_core.stats import CREDENTIAL_MISS, CREDENTIAL_SHARED_HIT, AuthStats
from auth_core.store import DatabaseUnavailable
from auth_core.store.records import Store

UNKNOWN_TTL = 10.0  # seconds an unknown credential is refused without a look-up
MAX_UNKNOWN = 10_000

# Describes the request for the audit log; a callable: made only for a refusal.
Call = CallInfo | Callable[[], CallInfo]


class Grant(Protocol):
    """What a cached grant carries for the cache: when it was read and until when it holds."""

    @property
    def generation(self) -> int: ...

    @property
    def until(self) -> float: ...


G = TypeVar("G", bound=Grant)


@dataclass(frozen=True, slots=True)
class CredentialDeps:
    """What every credential kind (API keys, PATs, service tokens) and the tenants' policies
    are built with; AuthCore.start makes one for all four."""

    store: Store
    settings: AuthSettings
    audit: AuditTrail
    revoker: Revoker
    revoked: RevocationSet
    stats: AuthStats
    shared: SharedCache


class CredentialCache(ABC, Generic[G]):
    """The cache of one kind of credential; the kind says how to read one by its hash, how
    to make a grant of it, how to admit a grant and how to refuse an unknown credential."""

    def __init__(
        self,
        kind: str,
        prefix: str,
        max_grants: int,
        deps: CredentialDeps,
    ) -> None:
        # The kind's `authenticate` reads the first two on every request.
        self._revoked = deps.revoked
        self._stats = deps.stats
        self._shared = deps.shared
        self._revoker = deps.revoker
        self._store = deps.store
        self._settings = deps.settings
        self._audit = deps.audit
        self._kind = kind  # its name in the shared tier
        self._prefix = prefix
        self._max_grants = max_grants
        self._grants: dict[str, G] = {}  # presented credential -> grant
        self._unknown: dict[str, float] = {}  # presented credential -> refused until (monotonic)
        self._loading: dict[tuple[str, int], asyncio.Future[G | None]] = {}

    # -- what each kind says ----------------------------------------------------------------

    @abstractmethod
    async def _stored(self, digest: str) -> Record | None:
        """The database's record of the credential with this hash, as the shared tier keeps
        it; None: no such credential."""

    @abstractmethod
    async def _grant(self, record: Record, generation: int) -> G | None:
        """The grant of a record read at `generation`; None: refuse it as unknown (without
        remembering it as unknown)."""

    @abstractmethod
    def _admit(self, grant: G, ip: str | None, call: Call) -> Principal:
        """The principal of a grant, or raise the kind's refusal. `ip`: the client's address
        where the kind checks one (API keys), else None."""

    @abstractmethod
    def _refusal(self, reason: str, call: Call, looked_up: bool) -> GatewayError:
        """The refusal of a credential that is "malformed" or "unknown"; `looked_up`: the
        database (or the shared tier) was asked just now, not a memory of an earlier answer."""

    def _recognised(self, secret: str, call: Call) -> bool:
        """Whether `secret` is in a format of the kind (else refused without a look-up); a
        kind may raise its own refusal instead."""
        return credentials.well_formed(secret, self._prefix)

    def _shared_usable(self, record: Record) -> bool:
        """Whether an entry of the shared tier has what `_grant` needs (else it is read again)."""
        return True

    # -- after a miss -----------------------------------------------------------------------

    def _miss(self, secret: str, ip: str | None, call: Call) -> Awaitable[Principal]:
        """What `authenticate` does when the credential is not cached or its grant is stale."""
        self._stats.lookups[CREDENTIAL_MISS] += 1
        if not self._recognised(secret, call):
            raise self._refusal("malformed", call, False)
        refused_until = self._unknown.get(secret)
        if refused_until is not None and refused_until > time.monotonic():
            raise self._refusal("unknown", call, False)
        return self._load(secret, ip, call)

    async def _load(self, secret: str, ip: str | None, call: Call) -> Principal:
        # Only a read begun after every revocation this worker knows of (the same generation)
        # is joined.
        flight = (secret, self._revoked.generation)
        pending = self._loading.get(flight)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(secret))
            self._loading[flight] = pending
            pending.add_done_callback(lambda _: self._loading.pop(flight, None))
        grant = await asyncio.shield(pending)
        if grant is None:
            raise self._refusal("unknown", call, True)
        return self._admit(grant, ip, call)

    async def _fetch(self, secret: str) -> G | None:
        """The grant of a credential from the shared tier or the database; None: unknown."""
        generation = self._revoked.generation  # before reading: a change meanwhile wins
        digest = credentials.credential_hash(secret)
        try:
            record, shared = await self._shared.read_through(
                self._kind, digest, lambda: self._stored(digest), self._shared_usable
            )
        except (DatabaseUnavailable, AuthUnavailable):
            stale = self._grants.get(secret)
            if stale is None or not self._revoker.serves_stale(stale.generation, stale.until):
                raise
            return stale
        if shared:
            self._stats.lookups[CREDENTIAL_SHARED_HIT] += 1
        if record is None:
            if len(self._unknown) >= MAX_UNKNOWN:
                self._unknown.clear()
            self._unknown[secret] = time.monotonic() + UNKNOWN_TTL
            return None
        grant = await self._grant(record, generation)
        if grant is None:
            return None
        if len(self._grants) >= self._max_grants:
            self._grants.clear()
        self._grants[secret] = grant
        return grant
