"""The records over both backends: users, sessions, refresh tokens, revocations, one-time
tokens, the audit log and settings, including the writes that must not race."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from auth_core.models import User
from auth_core.store import Database, UniqueViolation, open_database
from auth_core.store.records import Store
from auth_core.store.sessions import Spent

CONCURRENCY = 10


@pytest.fixture
async def connections(database_url: str, database: Database) -> AsyncIterator[list[Store]]:
    """Several Database objects on the same database: on SQLite each its own connection to the
    file, so their writes really race (one object serialises its statements itself)."""
    opened = [await open_database(database_url) for _ in range(CONCURRENCY)]
    try:
        yield [Store(db) for db in opened]
    finally:
        for db in opened:
            await db.close()


async def a_user(store: Store, email: str = "ada@example.com") -> User:
    return await store.users.create(email, "$argon2id$stand-in")


# -- users -------------------------------------------------------------------------------------


async def test_user_create_keeps_every_field_and_lower_cases_the_email(store: Store) -> None:
    user = await store.users.create(
        "Ada.Lovelace@Example.COM",
        "$argon2id$stand-in",
        name="Ada",
        roles=("user", "admin"),
        tenant_id="ten_1",
        external_id="ext-1",
        email_verified=True,
    )
    assert user.id.startswith("usr_")
    assert user.email == "ada.lovelace@example.com"
    assert (user.name, user.roles, user.tenant_id, user.external_id) == (
        "Ada",
        ("user", "admin"),
        "ten_1",
        "ext-1",
    )
    assert user.email_verified is True
    assert user.disabled is False
    assert (user.failed_logins, user.locked_until) == (0, 0.0)
    assert user.password_hash == "$argon2id$stand-in"
    assert await store.users.get(user.id) == user
    # A tenant's end user is found by the tenant's id for them, never by an e-mail login.
    assert await store.users.by_email("ADA.LOVELACE@example.com") is None
    assert await store.users.by_external_id("ten_1", "ext-1") == user
    assert await store.users.by_external_id("ten_2", "ext-1") is None


async def test_end_users_of_two_tenants_may_share_an_email_but_not_an_external_id(
    store: Store,
) -> None:
    platform = await store.users.create("ada@example.com", "$argon2id$stand-in")
    first = await store.users.create("ada@example.com", None, tenant_id="ten_1", external_id="u1")
    second = await store.users.create("ada@example.com", None, tenant_id="ten_2", external_id="u1")
    assert first.email == second.email == platform.email == "ada@example.com"
    assert await store.users.by_email("ada@example.com") == platform
    with pytest.raises(UniqueViolation):
        await store.users.create("bob@example.com", None, tenant_id="ten_1", external_id="u1")
    assert await store.users.count() == 3


@pytest.mark.parametrize(
    "second",
    [
        pytest.param("ada@example.com", id="same"),
        pytest.param("ADA@Example.com", id="other-case"),
    ],
)
async def test_user_create_conflicts_on_a_taken_email(store: Store, second: str) -> None:
    await a_user(store, "ada@example.com")
    with pytest.raises(UniqueViolation):
        await store.users.create(second, None)
    assert await store.users.count() == 1


async def test_user_lookups_of_unknown_users_find_nothing(store: Store) -> None:
    assert await store.users.get("usr_missing") is None
    assert await store.users.by_email("nobody@example.com") is None
    assert await store.users.update("usr_missing", name="x") is None
    assert await store.users.delete("usr_missing") is False


async def test_user_list_pages_in_creation_order_and_filters_by_tenant(store: Store) -> None:
    created = [
        await store.users.create(f"u{i}@example.com", None, tenant_id="ten_a" if i % 2 else None)
        for i in range(5)
    ]
    everyone = await store.users.list()
    assert [u.id for u in everyone] == [u.id for u in created]
    page = await store.users.list(limit=2, offset=1)
    assert [u.id for u in page] == [u.id for u in created[1:3]]
    tenant = await store.users.list(tenant_id="ten_a")
    assert [u.email for u in tenant] == ["u1@example.com", "u3@example.com"]
    assert await store.users.list(tenant_id="ten_none") == []
    assert await store.users.count() == 5


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"name": "Countess"}, {"name": "Countess"}, id="name"),
        pytest.param({"email": "NEW@Example.com"}, {"email": "new@example.com"}, id="email"),
        pytest.param({"roles": ("admin", "ops")}, {"roles": ("admin", "ops")}, id="roles"),
        pytest.param({"disabled": True}, {"disabled": True}, id="disabled"),
        pytest.param({"email_verified": True}, {"email_verified": True}, id="email_verified"),
        pytest.param(
            {"name": None, "disabled": True, "roles": ()},
            {"name": None, "disabled": True, "roles": ()},
            id="several",
        ),
    ],
)
async def test_user_update(store: Store, fields: dict[str, Any], expected: dict[str, Any]) -> None:
    user = await store.users.create("ada@example.com", None, name="Ada")
    updated = await store.users.update(user.id, **fields)
    assert updated is not None
    for key, value in expected.items():
        assert getattr(updated, key) == value
    assert updated.updated_at >= user.updated_at
    assert await store.users.get(user.id) == updated


async def test_user_update_refuses_other_fields_and_taken_emails(store: Store) -> None:
    user = await a_user(store, "ada@example.com")
    await a_user(store, "bob@example.com")
    with pytest.raises(ValueError, match="password_hash"):
        await store.users.update(user.id, password_hash="x")
    with pytest.raises(UniqueViolation):
        await store.users.update(user.id, email="BOB@example.com")
    assert (await store.users.get(user.id)) == user


async def test_user_delete_takes_its_sessions_and_tokens_with_it(store: Store) -> None:
    user = await a_user(store)
    session = await store.sessions.create(user.id, 3600, None, None)
    await store.refresh_tokens.add("h1", session.id, time.time() + 3600)
    await store.one_time_tokens.add("verify_email", user.id, "o1", 3600)
    assert await store.users.delete(user.id) is True
    assert await store.users.get(user.id) is None
    assert await store.sessions.get(session.id) is None
    assert await store.refresh_tokens.spend("h1") == Spent("unknown")
    assert await store.one_time_tokens.consume("verify_email", "o1") is None
    assert await store.users.delete(user.id) is False


async def test_password_hash_can_be_replaced(store: Store) -> None:
    user = await a_user(store)
    await store.users.set_password_hash(user.id, "$argon2id$new")
    stored = await store.users.get(user.id)
    assert stored is not None
    assert stored.password_hash == "$argon2id$new"


async def test_login_succeeded_clears_a_lock_left_by_an_older_version(store: Store) -> None:
    user = await a_user(store)
    await store.db.execute(
        "UPDATE users SET failed_logins = 5, locked_until = $1 WHERE id = $2",
        time.time() + 600,
        user.id,
    )
    await store.users.login_succeeded(user.id)
    reset = await store.users.get(user.id)
    assert reset is not None
    assert (reset.failed_logins, reset.locked_until) == (0, 0.0)


# -- sessions ----------------------------------------------------------------------------------


async def test_session_create_and_get(store: Store) -> None:
    user = await a_user(store)
    before = time.time()
    session = await store.sessions.create(user.id, 3600, "203.0.113.9", "agent/1.0")
    assert session.id.startswith("ses_")
    assert session.user_id == user.id
    assert (session.ip, session.user_agent) == ("203.0.113.9", "agent/1.0")
    assert session.revoked_at is None
    assert session.refreshed_at is None
    assert before <= session.created_at <= time.time()
    assert session.expires_at == pytest.approx(session.created_at + 3600)
    assert session.active(time.time())
    assert not session.active(session.expires_at + 1)
    assert await store.sessions.get(session.id) == session
    assert await store.sessions.get("ses_missing") is None


@pytest.mark.parametrize(
    ("user_agent", "stored"),
    [
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
        pytest.param("a" * 600, "a" * 512, id="truncated-to-512"),
    ],
)
async def test_session_user_agent(store: Store, user_agent: str | None, stored: str | None) -> None:
    user = await a_user(store)
    session = await store.sessions.create(user.id, 60, None, user_agent)
    assert session.user_agent == stored


async def test_session_revoke_once(store: Store) -> None:
    user = await a_user(store)
    session = await store.sessions.create(user.id, 3600, None, None)
    assert await store.sessions.revoke(session.id, "logout") is True
    assert await store.sessions.revoke(session.id, "logout") is False
    assert await store.sessions.revoke("ses_missing", "logout") is False
    revoked = await store.sessions.get(session.id)
    assert revoked is not None
    assert revoked.revoked_at is not None
    assert not revoked.active(time.time())


async def test_session_revoke_all_ends_the_live_sessions_of_one_user(store: Store) -> None:
    ada = await a_user(store, "ada@example.com")
    bob = await a_user(store, "bob@example.com")
    ada_sessions = [await store.sessions.create(ada.id, 3600, None, None) for _ in range(3)]
    bob_session = await store.sessions.create(bob.id, 3600, None, None)
    await store.sessions.revoke(ada_sessions[0].id, "logout")
    ended = await store.sessions.revoke_all(ada.id, "password reset")
    assert sorted(ended) == sorted(s.id for s in ada_sessions[1:])
    assert await store.sessions.revoke_all(ada.id, "again") == []
    for session in ada_sessions:
        current = await store.sessions.get(session.id)
        assert current is not None
        assert current.revoked_at is not None
    untouched = await store.sessions.get(bob_session.id)
    assert untouched is not None
    assert untouched.revoked_at is None


async def test_session_refreshed_moves_its_end(store: Store) -> None:
    user = await a_user(store)
    session = await store.sessions.create(user.id, 60, None, None)
    await store.sessions.refreshed(session.id, session.expires_at + 1000)
    current = await store.sessions.get(session.id)
    assert current is not None
    assert current.expires_at == pytest.approx(session.expires_at + 1000)
    assert current.refreshed_at is not None


# -- refresh tokens ----------------------------------------------------------------------------


@pytest.fixture
async def session_id(store: Store) -> str:
    user = await a_user(store)
    return (await store.sessions.create(user.id, 3600, None, None)).id


@pytest.mark.parametrize(
    ("lifetime", "presented", "first", "second"),
    [
        pytest.param(3600, "h", "ok", "reused", id="live-then-reused"),
        pytest.param(-1, "h", "expired", "expired", id="expired"),
        pytest.param(3600, "other", "unknown", "unknown", id="unknown"),
    ],
)
async def test_refresh_token_spend(
    store: Store, session_id: str, lifetime: float, presented: str, first: str, second: str
) -> None:
    await store.refresh_tokens.add("h", session_id, time.time() + lifetime)
    results = [await store.refresh_tokens.spend(presented) for _ in range(2)]
    assert [r.state for r in results] == [first, second]
    for result in results:
        assert result.session_id == (None if result.state == "unknown" else session_id)


async def test_refresh_tokens_of_a_forgotten_session_are_unknown(
    store: Store, session_id: str
) -> None:
    await store.refresh_tokens.add("a", session_id, time.time() + 3600)
    await store.refresh_tokens.add("b", session_id, time.time() + 3600)
    await store.refresh_tokens.spend("a")
    await store.refresh_tokens.forget_session(session_id)
    assert await store.refresh_tokens.spend("a") == Spent("unknown")
    assert await store.refresh_tokens.spend("b") == Spent("unknown")


async def test_refresh_token_hash_is_unique(store: Store, session_id: str) -> None:
    await store.refresh_tokens.add("h", session_id, time.time() + 3600)
    with pytest.raises(UniqueViolation):
        await store.refresh_tokens.add("h", session_id, time.time() + 3600)


async def test_concurrent_spends_of_one_refresh_token_let_exactly_one_win(
    store: Store, session_id: str, connections: list[Store]
) -> None:
    await store.refresh_tokens.add("h", session_id, time.time() + 3600)
    results = await asyncio.gather(*(s.refresh_tokens.spend("h") for s in connections))
    states = sorted(r.state for r in results)
    assert states == ["ok"] + ["reused"] * (CONCURRENCY - 1)
    assert {r.session_id for r in results} == {session_id}


async def test_concurrent_spends_through_one_database_object(store: Store, session_id: str) -> None:
    # One Database object a worker is the normal case: its own statements must not interleave.
    await store.refresh_tokens.add("h", session_id, time.time() + 3600)
    results = await asyncio.gather(*(store.refresh_tokens.spend("h") for _ in range(CONCURRENCY)))
    assert sorted(r.state for r in results) == ["ok"] + ["reused"] * (CONCURRENCY - 1)


# -- revocations -------------------------------------------------------------------------------


async def test_revocations_since_returns_newer_live_entries_oldest_first(store: Store) -> None:
    future = time.time() + 3600
    first = await store.revocations.add("session", "ses_1", future)
    await store.revocations.add("token", "jti_gone", time.time() - 1)
    third = await store.revocations.add("user", "usr_1", future)
    assert first.id < third.id
    assert (first.kind, first.value, first.expires_at) == ("session", "ses_1", future)
    assert first.at <= time.time()
    assert await store.revocations.since(0) == [first, third]
    assert await store.revocations.since(first.id) == [third]
    assert await store.revocations.since(third.id) == []


async def test_revocations_purge_drops_only_expired_entries(store: Store) -> None:
    live = await store.revocations.add("session", "ses_live", time.time() + 3600)
    for i in range(3):
        await store.revocations.add("token", f"jti_{i}", time.time() - 1)
    assert await store.revocations.purge() == 3
    assert await store.revocations.purge() == 0
    assert await store.revocations.since(0) == [live]
    after = await store.revocations.add("session", "ses_after", time.time() + 3600)
    assert after.id > live.id


# -- one-time tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "kind", "presented", "found"),
    [
        pytest.param(3600, "verify_email", "t", True, id="right"),
        pytest.param(3600, "reset_password", "t", False, id="wrong-kind"),
        pytest.param(3600, "verify_email", "other", False, id="unknown"),
        pytest.param(-1, "verify_email", "t", False, id="expired"),
    ],
)
async def test_one_time_token_consume(
    store: Store, lifetime: float, kind: str, presented: str, found: bool
) -> None:
    user = await a_user(store)
    await store.one_time_tokens.add("verify_email", user.id, "t", lifetime)
    assert await store.one_time_tokens.consume(kind, presented) == (user.id if found else None)
    # Whatever happened, a second presentation of the same finds nothing.
    assert await store.one_time_tokens.consume(kind, presented) is None


async def test_one_time_token_of_the_wrong_kind_is_not_used_up(store: Store) -> None:
    user = await a_user(store)
    await store.one_time_tokens.add("verify_email", user.id, "t", 3600)
    assert await store.one_time_tokens.consume("reset_password", "t") is None
    assert await store.one_time_tokens.consume("verify_email", "t") == user.id


async def test_concurrent_consumes_of_one_token_let_exactly_one_win(
    store: Store, connections: list[Store]
) -> None:
    user = await a_user(store)
    await store.one_time_tokens.add("reset_password", user.id, "t", 3600)
    results = await asyncio.gather(
        *(s.one_time_tokens.consume("reset_password", "t") for s in connections)
    )
    assert sorted(results, key=str) == [None] * (CONCURRENCY - 1) + [user.id]


async def test_consuming_one_reset_token_spends_every_other_of_the_user(store: Store) -> None:
    user = await a_user(store)
    other = await a_user(store, "bob@example.com")
    for token in ("older", "newer"):
        await store.one_time_tokens.add("reset_password", user.id, token, 3600)
    await store.one_time_tokens.add("reset_password", other.id, "bobs", 3600)
    await store.one_time_tokens.add("verify_email", user.id, "verify", 3600)
    assert await store.one_time_tokens.consume_all("reset_password", "newer") == user.id
    assert await store.one_time_tokens.consume_all("reset_password", "older") is None
    assert await store.one_time_tokens.consume_all("reset_password", "newer") is None
    # Another user's token and another kind of token are left alone.
    assert await store.one_time_tokens.consume_all("reset_password", "bobs") == other.id
    assert await store.one_time_tokens.consume("verify_email", "verify") == user.id


async def test_consume_all_refuses_an_unknown_or_expired_token(store: Store) -> None:
    user = await a_user(store)
    await store.one_time_tokens.add("reset_password", user.id, "live", 3600)
    await store.one_time_tokens.add("reset_password", user.id, "expired", -1)
    assert await store.one_time_tokens.consume_all("reset_password", "unknown") is None
    assert await store.one_time_tokens.consume_all("reset_password", "expired") is None
    # Neither refusal spent the live one.
    assert await store.one_time_tokens.consume_all("reset_password", "live") == user.id


async def test_void_uses_every_token_of_a_kind_and_user(store: Store) -> None:
    user = await a_user(store)
    for token in ("a", "b"):
        await store.one_time_tokens.add("reset_password", user.id, token, 3600)
    await store.one_time_tokens.add("verify_email", user.id, "v", 3600)
    assert await store.one_time_tokens.void("reset_password", user.id) == 2
    assert await store.one_time_tokens.consume("reset_password", "a") is None
    assert await store.one_time_tokens.consume("reset_password", "b") is None
    assert await store.one_time_tokens.consume("verify_email", "v") == user.id


async def test_two_reset_tokens_of_a_user_presented_at_once_let_exactly_one_win(
    store: Store, connections: list[Store]
) -> None:
    user = await a_user(store)
    for number in range(CONCURRENCY):
        await store.one_time_tokens.add("reset_password", user.id, f"t{number}", 3600)
    results = await asyncio.gather(
        *(
            s.one_time_tokens.consume_all("reset_password", f"t{number}")
            for number, s in enumerate(connections)
        )
    )
    assert sorted(results, key=str) == [None] * (CONCURRENCY - 1) + [user.id]


# -- audit -------------------------------------------------------------------------------------


async def test_audit_append_and_list(store: Store) -> None:
    before = time.time()
    await store.audit.append(
        "login",
        "success",
        user_id="usr_a",
        request_id="req-1",
        ip="203.0.113.9",
        detail={"session_id": "ses_1", "n": 2, "nested": {"x": [1, None]}, "text": "é"},
    )
    await store.audit.append("login", "failure", user_id="usr_b", detail={"reason": "password"})
    await store.audit.append("user_update", "success", user_id="usr_b", actor_id="usr_a")
    await store.audit.append("signup", "success", detail={})
    entries = await store.audit.list()
    assert [(e["event"], e["outcome"]) for e in entries] == [
        ("signup", "success"),
        ("user_update", "success"),
        ("login", "failure"),
        ("login", "success"),
    ]
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)
    assert all(isinstance(i, int) for i in ids)
    oldest = entries[-1]
    assert oldest["detail"] == {
        "session_id": "ses_1",
        "n": 2,
        "nested": {"x": [1, None]},
        "text": "é",
    }
    assert (oldest["user_id"], oldest["actor_id"], oldest["request_id"], oldest["ip"]) == (
        "usr_a",
        None,
        "req-1",
        "203.0.113.9",
    )
    assert before <= oldest["at"] <= time.time()
    assert entries[0]["detail"] is None  # an empty detail is stored as none
    assert entries[1]["detail"] is None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, ["e4", "e3", "e2", "e1", "e0"], id="all"),
        pytest.param({"limit": 2}, ["e4", "e3"], id="limit"),
        pytest.param({"user_id": "usr_a"}, ["e4", "e2", "e0"], id="user-as-subject-or-actor"),
        pytest.param({"user_id": "usr_b"}, ["e4", "e1"], id="user-b"),
        pytest.param({"event": "login"}, ["e1", "e0"], id="event"),
        pytest.param({"event": "login", "user_id": "usr_b"}, ["e1"], id="event-and-user"),
        pytest.param({"user_id": "usr_nobody"}, [], id="no-match"),
    ],
)
async def test_audit_list_filters(
    store: Store, filters: dict[str, Any], expected: list[str]
) -> None:
    rows = [
        ("login", "usr_a", None),
        ("login", "usr_b", None),
        ("logout", "usr_a", None),
        ("signup", "usr_c", None),
        ("user_update", "usr_b", "usr_a"),
    ]
    for number, (event, user_id, actor_id) in enumerate(rows):
        await store.audit.append(
            event, "success", user_id=user_id, actor_id=actor_id, request_id=f"e{number}"
        )
    entries = await store.audit.list(**filters)
    assert [e["request_id"] for e in entries] == expected


async def test_audit_list_pages_backwards_with_before(store: Store) -> None:
    for number in range(5):
        await store.audit.append("login", "success", request_id=f"e{number}")
    first = await store.audit.list(limit=2)
    second = await store.audit.list(limit=2, before=first[-1]["id"])
    third = await store.audit.list(limit=2, before=second[-1]["id"])
    assert [e["request_id"] for e in first + second + third] == ["e4", "e3", "e2", "e1", "e0"]


# -- settings ----------------------------------------------------------------------------------


async def test_settings_put_if_absent_keeps_the_first_value(store: Store) -> None:
    assert await store.settings.get("jwt_secret") is None
    assert await store.settings.put_if_absent("jwt_secret", "first") == "first"
    assert await store.settings.put_if_absent("jwt_secret", "second") == "first"
    assert await store.settings.get("jwt_secret") == "first"
    assert await store.settings.put_if_absent("other", "x") == "x"


async def test_settings_put_if_absent_concurrently_agrees_on_one_value(
    store: Store, connections: list[Store]
) -> None:
    results = await asyncio.gather(
        *(s.settings.put_if_absent("jwt_secret", f"v{i}") for i, s in enumerate(connections))
    )
    assert len(set(results)) == 1
    assert results[0] in {f"v{i}" for i in range(CONCURRENCY)}
    assert await store.settings.get("jwt_secret") == results[0]
