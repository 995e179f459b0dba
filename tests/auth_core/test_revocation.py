"""The revocation set each worker keeps: what it refuses, how it follows the table, and when
its entries may go."""

from __future__ import annotations

import time

import pytest

from auth_core.revocation import SESSION, TOKEN, USER, RevocationSet
from auth_core.store import Database
from auth_core.store.revocations import Revocation, RevocationTable
from tests.support import two_connections

FAR = 10_000_000_000.0  # an expiry that has not come


def entry(
    kind: str, value: str, at: float = 100.0, expires_at: float = FAR, number: int = 1
) -> Revocation:
    return Revocation(number, kind, value, at, expires_at)


@pytest.mark.parametrize(
    ("revocation", "user_id", "session_id", "token_id", "issued_at", "refused"),
    [
        pytest.param(entry(SESSION, "s1"), "u1", "s1", "j1", 200.0, True, id="session-hit"),
        pytest.param(entry(SESSION, "s1"), "u1", "s2", "j1", 200.0, False, id="other-session"),
        pytest.param(entry(SESSION, "s1"), "u1", None, None, 200.0, False, id="no-session"),
        pytest.param(entry(TOKEN, "j1"), "u1", "s1", "j1", 200.0, True, id="token-hit"),
        pytest.param(entry(TOKEN, "j1"), "u1", "s1", "j2", 200.0, False, id="other-token"),
        pytest.param(entry(USER, "u1", at=100.0), "u1", "s1", "j1", 99.0, True, id="user-before"),
        pytest.param(entry(USER, "u1", at=100.0), "u1", "s1", "j1", 100.0, True, id="user-same"),
        pytest.param(entry(USER, "u1", at=100.0), "u1", "s1", "j1", 100.5, False, id="user-after"),
        pytest.param(entry(USER, "u1", at=100.0), "u2", "s1", "j1", 50.0, False, id="other-user"),
        pytest.param(entry("unknown-kind", "u1"), "u1", "s1", "j1", 50.0, False, id="kind-unknown"),
    ],
)
def test_what_the_set_refuses(
    revocation: Revocation,
    user_id: str,
    session_id: str | None,
    token_id: str | None,
    issued_at: float,
    refused: bool,
) -> None:
    revoked = RevocationSet()
    revoked.apply(revocation)
    assert revoked.refuses(user_id, session_id, token_id, issued_at) is refused
    assert revoked.last_id == revocation.id


def test_the_latest_user_revocation_counts() -> None:
    revoked = RevocationSet()
    revoked.apply(entry(USER, "u1", at=200.0, number=2))
    revoked.apply(entry(USER, "u1", at=100.0, number=1))  # an older one arriving late
    assert revoked.refuses("u1", None, None, 150.0)
    assert not revoked.refuses("u1", None, None, 250.0)
    assert revoked.last_id == 2


def test_prune_drops_entries_whose_names_cannot_be_valid_any_more() -> None:
    revoked = RevocationSet()
    for number, kind in enumerate((SESSION, TOKEN, USER)):
        revoked.apply(entry(kind, f"gone-{kind}", expires_at=500.0, number=2 * number + 1))
        revoked.apply(entry(kind, f"kept-{kind}", expires_at=1500.0, number=2 * number + 2))
    revoked.prune(now=1000.0)
    assert set(revoked.sessions) == {f"kept-{SESSION}"}
    assert set(revoked.tokens) == {f"kept-{TOKEN}"}
    assert set(revoked.users) == {f"kept-{USER}"}
    assert revoked.last_id == 6  # pruning never makes it read the table again


async def test_sync_follows_the_table_by_id(database: Database) -> None:
    revocations = RevocationTable(database)
    revoked = RevocationSet()
    assert await revoked.sync(revocations) == 0
    future = time.time() + 600
    await revocations.add(SESSION, "s1", future)
    await revocations.add(TOKEN, "j1", future)
    assert await revoked.sync(revocations) == 2
    assert await revoked.sync(revocations) == 0
    await revocations.add(USER, "u1", future)
    assert await revoked.sync(revocations) == 1
    assert revoked.refuses("u1", None, None, 0.0)
    assert revoked.refuses("x", "s1", None, 0.0)
    assert revoked.refuses("x", None, "j1", 0.0)


async def test_a_revocation_committed_after_a_later_numbered_one_is_not_missed(
    postgres_url: str,
) -> None:
    # PostgreSQL only: SQLite holds its write lock from id allocation to commit, so its ids
    # always commit in order. Two replicas revoking at once, a third syncing between the two
    # commits: the explicit transaction stands for the slower of the two INSERTs.
    async with two_connections(postgres_url) as (slow_writer, fast_writer):
        revoked = RevocationSet()
        future = time.time() + 600
        async with slow_writer.transaction() as transaction:
            slow = await RevocationTable(transaction).add(SESSION, "ses_slow", future)
            fast = await RevocationTable(fast_writer).add(SESSION, "ses_fast", future)
            assert slow.id < fast.id
            await revoked.sync(RevocationTable(fast_writer))
        await revoked.sync(RevocationTable(fast_writer))
        assert set(revoked.sessions) == {"ses_slow", "ses_fast"}
