"""Personal access tokens through the AuthCore facade, on both backends: shown once and stored
as a hash, acting as their user with the user's current roles, refused once deleted (here and
in another worker after it syncs), when the user is disabled or deleted, and when expired."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from auth_core import credentials
from auth_core.errors import GatewayError, InvalidRequest, InvalidToken, NotFound, TokenExpired
from auth_core.models import Pat, Principal, User
from auth_core.pats import MAX_PER_USER
from auth_core.revocation import USER
from auth_core.service import AuthCore, CallInfo
from auth_core.store import DatabaseUnavailable
from auth_core.store.sqlite import SQLiteDatabase
from tests.auth_core.helpers import PASSWORD, another_worker, new_credential, settle, sync

CALL = CallInfo(ip="203.0.113.10", user_agent="cli/1.0", request_id="req-p")


async def a_user(core: AuthCore, email: str = "ada@example.com", **options: Any) -> User:
    return await core.accounts.create(email, PASSWORD, verified=True, **options)


async def a_pat(core: AuthCore, user: User, **body: Any) -> tuple[Pat, str]:
    return await core.pats.create(user.id, {"name": "ci", **body}, CALL)


async def authenticate(core: AuthCore, secret: str) -> Principal:
    answer = core.pats.authenticate(secret, CALL)
    if isinstance(answer, Principal):
        return answer
    return await answer


async def refusal(core: AuthCore, secret: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await authenticate(core, secret)
    return caught.value


# -- creation ----------------------------------------------------------------------------------


async def test_a_pat_is_shown_once_and_only_its_hash_is_stored(core: AuthCore) -> None:
    user = await a_user(core)
    before = time.time()
    pat, secret = await a_pat(core, user, name="deploy script", scopes=["deploy", "read"])
    assert credentials.well_formed(secret, credentials.PAT_PREFIX)
    assert pat.id.startswith("pat_")
    assert (pat.user_id, pat.name, pat.prefix) == (user.id, "deploy script", secret[:12])
    assert pat.scopes == ("deploy", "read")
    assert pat.expires_at is None
    assert before <= pat.created_at <= time.time()
    store = core.store
    [row] = await store.db.fetch("SELECT * FROM pats")
    assert row["token_hash"] == credentials.credential_hash(secret)
    for value in row.values():
        assert secret[4:] not in str(value)
    [event] = await store.audit.list(event="pat_create")
    assert (event["user_id"], event["detail"]["pat_id"]) == (user.id, pat.id)
    assert secret[4:] not in str(event)


async def test_listing_never_shows_the_secret(core: AuthCore) -> None:
    user = await a_user(core)
    other = await a_user(core, "bob@example.com")
    first, first_secret = await a_pat(core, user, name="one")
    second, second_secret = await a_pat(core, user, name="two")
    await a_pat(core, other, name="theirs")
    listed = await core.pats.list(user.id)
    assert [p.id for p in listed] == [first.id, second.id]
    for pat in listed:
        shown = pat.public()
        assert set(shown) == {
            "id",
            "name",
            "prefix",
            "scopes",
            "created_at",
            "expires_at",
            "last_used_at",
        }
        for secret in (first_secret, second_secret):
            assert secret[4:] not in repr(pat)
            assert all(secret[12:] not in str(value) for value in shown.values())
    assert [p.name for p in await core.pats.list(other.id)] == ["theirs"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-name"),
        pytest.param({"name": ""}, id="empty-name"),
        pytest.param({"name": "x" * 201}, id="long-name"),
        pytest.param({"name": "ci", "scopes": "read"}, id="scopes-not-a-list"),
        pytest.param({"name": "ci", "scopes": [""]}, id="empty-scope"),
        pytest.param({"name": "ci", "scopes": ["s"] * 33}, id="too-many-scopes"),
        pytest.param({"name": "ci", "expires_at": 1.0}, id="expired"),
        pytest.param({"name": "ci", "expires_at": "someday"}, id="bad-expiry"),
    ],
)
async def test_a_bad_request_creates_nothing(core: AuthCore, body: dict[str, Any]) -> None:
    user = await a_user(core)
    with pytest.raises(InvalidRequest):
        await core.pats.create(user.id, body, CALL)
    assert await core.pats.list(user.id) == []


async def test_at_most_fifty_per_user(core: AuthCore) -> None:
    user = await a_user(core)
    other = await a_user(core, "bob@example.com")
    made = [await a_pat(core, user, name=f"t{number}") for number in range(MAX_PER_USER)]
    assert MAX_PER_USER == 50
    with pytest.raises(InvalidRequest):
        await a_pat(core, user, name="one too many")
    assert len(await core.pats.list(user.id)) == 50
    # Another user is not affected; deleting one makes room.
    await a_pat(core, other)
    await core.pats.delete(user.id, made[0][0].id, CALL)
    await a_pat(core, user, name="in its place")
    with pytest.raises(InvalidRequest):
        await a_pat(core, user, name="one too many again")


# -- authentication ----------------------------------------------------------------------------


async def test_a_pat_acts_as_its_user_with_their_roles(core: AuthCore) -> None:
    user = await a_user(core, roles=("user", "ops"))
    pat, secret = await a_pat(core, user, scopes=["read"], expires_at="90d")
    principal = await authenticate(core, secret)
    assert principal.method == "pat"
    assert (principal.user_id, principal.email) == (user.id, "ada@example.com")
    assert principal.roles == ("user", "ops")
    assert (principal.credential_id, principal.scopes) == (pat.id, ("read",))
    assert (principal.session_id, principal.tenant_id) == (None, None)
    assert pat.expires_at is not None
    assert principal.expires_at == pat.expires_at
    # Seen once, it is answered at once from the worker's cache.
    assert isinstance(core.pats.authenticate(secret, CALL), Principal)


async def test_a_malformed_pat_is_refused_without_the_database(core: AuthCore) -> None:
    user = await a_user(core)
    _, secret = await a_pat(core, user)
    typo = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    api_key = credentials.generate(credentials.API_KEY_PREFIX)
    assert core.db is not None
    await core.db.close()
    for presented in (typo, api_key, "", "gwp_", secret[:-1], "Bearer " + secret):
        with pytest.raises(InvalidToken) as caught:
            core.pats.authenticate(presented, CALL)
        assert (caught.value.status, caught.value.code) == (401, "invalid_token")
    with pytest.raises(DatabaseUnavailable):
        await authenticate(core, credentials.generate(credentials.PAT_PREFIX))


async def test_an_unknown_pat_is_refused_and_remembered(core: AuthCore) -> None:
    unknown = credentials.generate(credentials.PAT_PREFIX)
    assert type(await refusal(core, unknown)) is InvalidToken
    assert core.db is not None
    await core.db.close()
    with pytest.raises(InvalidToken):
        core.pats.authenticate(unknown, CALL)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_concurrent_misses_on_one_pat_read_the_database_once(core: AuthCore) -> None:
    """As for API keys: a cold start under load asks the database once, not once a request.
    (SQLite only: its trace callback shows every statement the database runs.)"""
    user = await a_user(core)
    _, secret = await a_pat(core, user)
    # A fresh worker: nothing cached. Twenty requests with the token arrive together.
    async with another_worker(core) as worker:
        database = worker.store.db
        assert isinstance(database, SQLiteDatabase)
        statements: list[str] = []
        await database._conn().set_trace_callback(statements.append)
        found = await asyncio.gather(*(authenticate(worker, secret) for _ in range(20)))
        await database._conn().set_trace_callback(None)
        assert {principal.user_id for principal in found} == {user.id}
        token_reads = [sql for sql in statements if "FROM pats WHERE token_hash" in sql]
        assert len(token_reads) == 1, statements
        assert isinstance(worker.pats.authenticate(secret, CALL), Principal)


async def test_an_expired_pat_is_refused(core: AuthCore) -> None:
    user = await a_user(core)
    secret, digest, shown = new_credential(credentials.PAT_PREFIX)
    await core.store.pats.create(
        user.id, digest, shown, name="old", scopes=[], expires_at=time.time() - 1
    )
    error = await refusal(core, secret)
    assert type(error) is TokenExpired
    assert (error.status, error.code) == (401, "token_expired")


# -- deletion, and changes of the user ---------------------------------------------------------


async def test_a_deleted_pat_is_refused_at_once_and_by_another_worker_after_sync(
    core: AuthCore,
) -> None:
    user = await a_user(core)
    pat, secret = await a_pat(core, user, name="gone")
    _, kept = await a_pat(core, user, name="kept")
    async with another_worker(core) as other:
        await authenticate(other, secret)
        await authenticate(core, secret)
        await core.pats.delete(user.id, pat.id, CALL)
        assert type(await refusal(core, secret)) is InvalidToken
        assert isinstance(other.pats.authenticate(secret, CALL), Principal)  # not synced yet
        await sync(other)
        assert type(await refusal(other, secret)) is InvalidToken
        for worker in (core, other):
            assert (await authenticate(worker, kept)).user_id == user.id
    assert [p.name for p in await core.pats.list(user.id)] == ["kept"]
    with pytest.raises(NotFound):
        await core.pats.delete(user.id, pat.id, CALL)


async def test_only_the_owner_can_delete_a_pat(core: AuthCore) -> None:
    user = await a_user(core)
    other = await a_user(core, "bob@example.com")
    pat, secret = await a_pat(core, user)
    with pytest.raises(NotFound):
        await core.pats.delete(other.id, pat.id, CALL)
    assert (await authenticate(core, secret)).credential_id == pat.id


async def test_a_role_change_is_seen_at_once_and_by_another_worker_after_sync(
    core: AuthCore,
) -> None:
    user = await a_user(core)
    _, secret = await a_pat(core, user)
    async with another_worker(core) as other:
        assert (await authenticate(other, secret)).roles == ("user",)
        assert (await authenticate(core, secret)).roles == ("user",)
        await core.accounts.update(user.id, {"roles": ["user", "ops"]}, None, CALL)
        assert (await authenticate(core, secret)).roles == ("user", "ops")
        await sync(other)
        assert (await authenticate(other, secret)).roles == ("user", "ops")
        # A change written straight to the store and published as a user revocation.
        await core.store.users.update(user.id, roles=("viewer",))
        await core.revoke(USER, user.id)
        assert (await authenticate(core, secret)).roles == ("viewer",)
        await sync(other)
        assert (await authenticate(other, secret)).roles == ("viewer",)


async def refused_by_both_workers_after(
    core: AuthCore, secret: str, change: Callable[[], Awaitable[object]]
) -> None:
    """`secret` read (so cached) by this worker and another, then `change` made: this worker
    refuses it at once, the other once it has synced, both as an invalid token."""
    async with another_worker(core) as other:
        await authenticate(other, secret)
        await authenticate(core, secret)
        await change()
        assert type(await refusal(core, secret)) is InvalidToken
        await sync(other)
        assert type(await refusal(other, secret)) is InvalidToken


async def test_a_disabled_users_pats_are_refused(core: AuthCore) -> None:
    user = await a_user(core)
    _, secret = await a_pat(core, user)
    await refused_by_both_workers_after(
        core, secret, lambda: core.accounts.update(user.id, {"disabled": True}, None, CALL)
    )
    await settle(core)
    # One refusal by each worker (the other one's audit written before it closed).
    refusals = await core.store.audit.list(event="pat")
    assert [e["detail"]["reason"] for e in refusals] == ["user_disabled"] * 2


async def test_re_enabling_a_user_brings_their_pats_back(core: AuthCore) -> None:
    user = await a_user(core)
    _, secret = await a_pat(core, user)
    async with another_worker(core) as other:
        await core.accounts.update(user.id, {"disabled": True}, None, CALL)
        await sync(other)
        for worker in (core, other):
            assert type(await refusal(worker, secret)) is InvalidToken
        await core.accounts.update(user.id, {"disabled": False}, None, CALL)
        await sync(other)
        # The user can log in again at once; their tokens should work again too.
        await core.sessions.login("ada@example.com", PASSWORD, CALL)
        for worker in (core, other):
            assert (await authenticate(worker, secret)).user_id == user.id


async def test_a_deleted_users_pats_are_refused(core: AuthCore) -> None:
    user = await a_user(core)
    _, secret = await a_pat(core, user)
    await refused_by_both_workers_after(
        core, secret, lambda: core.accounts.delete(user.id, None, CALL)
    )
    assert await core.store.pats.of_user(user.id) == []


# -- last use ----------------------------------------------------------------------------------


async def test_last_use_is_written_by_flush_usage_and_on_close(core: AuthCore) -> None:
    user = await a_user(core)
    pat, secret = await a_pat(core, user, name="flushed")
    closed, closed_secret = await a_pat(core, user, name="closed")
    before = time.time()
    await authenticate(core, secret)
    await core.flush_usage()
    [flushed] = [p for p in await core.pats.list(user.id) if p.id == pat.id]
    assert flushed.last_used_at is not None
    assert before <= flushed.last_used_at <= time.time()
    async with another_worker(core) as other:
        await authenticate(other, closed_secret)
    [written] = [p for p in await core.pats.list(user.id) if p.id == closed.id]
    assert written.last_used_at is not None
    assert written.last_used_at >= before


async def test_the_limit_holds_under_concurrent_creation(core: AuthCore) -> None:
    user = await a_user(core)
    for number in range(MAX_PER_USER - 2):
        await a_pat(core, user, name=f"t{number}")
    async with another_worker(core) as other:
        results = await asyncio.gather(
            *(
                worker.pats.create(user.id, {"name": f"late{number}"}, CALL)
                for number, worker in enumerate((core, other) * 5)
            ),
            return_exceptions=True,
        )
    assert sum(isinstance(r, tuple) for r in results) == 2, results
    assert all(isinstance(r, tuple | InvalidRequest) for r in results), results
    assert len(await core.pats.list(user.id)) == MAX_PER_USER
