"""Account administration on both backends: creating, changing and deleting users (the changes
that must end sessions do), and importing users from another system."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from auth_core.errors import (
    Conflict,
    GatewayError,
    InvalidCredentials,
    InvalidRequest,
    InvalidToken,
    NotFound,
    TokenRevoked,
)
from auth_core.models import User
from auth_core.service import AuthCore, CallInfo
from tests.auth_core.foreign_hashes import bcrypt_hash, django_pbkdf2, passlib_pbkdf2
from tests.auth_core.helpers import PASSWORD, refused

EMAIL = "ada@example.com"
CALL = CallInfo(ip="203.0.113.20", request_id="req-admin")
ADMIN = "usr_admin"


async def test_create(core: AuthCore) -> None:
    user = await core.accounts.create(
        " Ada@Example.com ".strip(), PASSWORD, name="Ada", roles=("admin",), verified=True
    )
    assert (user.email, user.name, user.roles, user.email_verified) == (
        EMAIL,
        "Ada",
        ("admin",),
        True,
    )
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert await core.accounts.get(user.id) == user
    with pytest.raises(Conflict):
        await core.accounts.create("ADA@example.com", PASSWORD)


@pytest.mark.parametrize(
    ("email", "password"),
    [
        pytest.param("ada", PASSWORD, id="no-at"),
        pytest.param("ada@example", PASSWORD, id="no-dot"),
        pytest.param("a@b@example.com", PASSWORD, id="two-ats"),
        pytest.param("ada @example.com", PASSWORD, id="space"),
        pytest.param("a" * 65 + "@example.com", PASSWORD, id="local-part-too-long"),
        pytest.param("a@" + "b" * 250 + ".com", PASSWORD, id="too-long"),
        pytest.param(EMAIL, "seven77", id="password-7"),
        pytest.param(EMAIL, "x" * 1025, id="password-1025"),
    ],
)
async def test_create_refuses_bad_input(core: AuthCore, email: str, password: str) -> None:
    with pytest.raises(InvalidRequest):
        await core.accounts.create(email, password)
    assert await core.store.users.count() == 0


async def test_get_unknown_user(core: AuthCore) -> None:
    with pytest.raises(NotFound):
        await core.accounts.get("usr_missing")


@pytest.mark.parametrize(
    ("changes", "ends_sessions"),
    [
        pytest.param({"roles": ["admin"]}, True, id="roles"),
        pytest.param({"roles": []}, True, id="roles-emptied"),
        pytest.param({"disabled": True}, True, id="disable"),
        pytest.param({"name": "Countess"}, False, id="name"),
        pytest.param({"email_verified": True}, False, id="verify"),
        pytest.param({"disabled": False}, False, id="enable"),
    ],
)
async def test_update_ends_sessions_when_roles_change_or_the_user_is_disabled(
    core: AuthCore, changes: dict[str, Any], ends_sessions: bool
) -> None:
    user = await core.accounts.create(EMAIL, PASSWORD, verified=True)
    pair = await core.sessions.login(EMAIL, PASSWORD, CALL)
    updated = await core.accounts.update(user.id, changes, ADMIN, CALL)
    for key, value in changes.items():
        assert getattr(updated, key) == (tuple(value) if key == "roles" else value)
    if ends_sessions:
        assert refused(core, pair.access_token) is TokenRevoked
        with pytest.raises(InvalidToken):
            await core.sessions.refresh(pair.refresh_token, CALL)
    else:
        assert refused(core, pair.access_token) is None
        await core.sessions.refresh(pair.refresh_token, CALL)
    [entry] = await core.store.audit.list(event="user_update")
    assert (entry["user_id"], entry["actor_id"], entry["request_id"]) == (
        user.id,
        ADMIN,
        "req-admin",
    )
    assert entry["detail"] == {"fields": sorted(changes)}


async def test_new_roles_are_in_the_next_login(core: AuthCore) -> None:
    user = await core.accounts.create(EMAIL, PASSWORD)
    await core.accounts.update(user.id, {"roles": ["user", "admin", "admin"]}, ADMIN, CALL)
    pair = await core.sessions.login(EMAIL, PASSWORD, CALL)
    assert core.authenticate_access_token(pair.access_token).roles == ("user", "admin")


async def test_a_re_enabled_user_can_log_in_again(core: AuthCore) -> None:
    user = await core.accounts.create(EMAIL, PASSWORD)
    await core.accounts.update(user.id, {"disabled": True}, ADMIN, CALL)
    with pytest.raises(InvalidCredentials):
        await core.sessions.login(EMAIL, PASSWORD, CALL)
    await core.accounts.update(user.id, {"disabled": False}, ADMIN, CALL)
    await core.sessions.login(EMAIL, PASSWORD, CALL)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"password_hash": "x"}, InvalidRequest, id="not-changeable"),
        pytest.param({"id": "usr_other"}, InvalidRequest, id="id"),
        pytest.param({"roles": "admin"}, InvalidRequest, id="roles-a-string"),
        pytest.param({"roles": ["Admin"]}, InvalidRequest, id="roles-upper-case"),
        pytest.param({"roles": ["a b"]}, InvalidRequest, id="roles-space"),
        pytest.param({"disabled": "yes"}, InvalidRequest, id="disabled-a-string"),
        pytest.param({"name": 5}, InvalidRequest, id="name-a-number"),
        pytest.param({"email": "nope"}, InvalidRequest, id="email-bad"),
        pytest.param({"email": "BOB@example.com"}, Conflict, id="email-taken"),
    ],
)
async def test_update_refusals_change_nothing(
    core: AuthCore, changes: dict[str, Any], error: type[GatewayError]
) -> None:
    user = await core.accounts.create(EMAIL, PASSWORD)
    await core.accounts.create("bob@example.com", PASSWORD)
    pair = await core.sessions.login(EMAIL, PASSWORD, CALL)
    with pytest.raises(error):
        await core.accounts.update(user.id, changes, ADMIN, CALL)
    assert await core.accounts.get(user.id) == user
    assert refused(core, pair.access_token) is None


async def test_update_of_an_unknown_user(core: AuthCore) -> None:
    with pytest.raises(NotFound):
        await core.accounts.update("usr_missing", {"name": "x"}, ADMIN, CALL)


async def test_delete_ends_sessions_and_the_account(core: AuthCore) -> None:
    user = await core.accounts.create(EMAIL, PASSWORD)
    pair = await core.sessions.login(EMAIL, PASSWORD, CALL)
    await core.accounts.delete(user.id, ADMIN, CALL)
    assert refused(core, pair.access_token) is TokenRevoked
    with pytest.raises(InvalidToken):
        await core.sessions.refresh(pair.refresh_token, CALL)
    with pytest.raises(InvalidCredentials):
        await core.sessions.login(EMAIL, PASSWORD, CALL)
    with pytest.raises(NotFound):
        await core.accounts.get(user.id)
    with pytest.raises(NotFound):
        await core.accounts.delete(user.id, ADMIN, CALL)
    # The address is free again; the new account's tokens are not touched by the old revocation.
    await core.accounts.create(EMAIL, PASSWORD)
    fresh = await core.sessions.login(EMAIL, PASSWORD, CALL)
    assert refused(core, fresh.access_token) is None


# -- import ---------------------------------------------------------------------------------


async def test_import_csv(core: AuthCore) -> None:
    await core.accounts.create("taken@example.com", PASSWORD)
    lines = [
        "email,password_hash,roles",
        f"bcrypt@example.com,{bcrypt_hash(PASSWORD)},user;admin",
        f"PASSLIB@Example.com,{passlib_pbkdf2(PASSWORD)},",
        f"django@example.com,{django_pbkdf2(PASSWORD)}, ops ; user ",
        # argon2 hashes hold commas ("m=...,t=...,p=..."): CSV quotes them.
        f'argon@example.com,"{core.passwords.hash(PASSWORD)}",user',
        "md5@example.com,md5$salt$5f4dcc3b5aa765d61d8327deb882cf99,user",
        f"not-an-email,{bcrypt_hash(PASSWORD)},user",
        f"taken@example.com,{bcrypt_hash(PASSWORD)},user",
        f"badrole@example.com,{bcrypt_hash(PASSWORD)},Admin",
        f"bcrypt@example.com,{bcrypt_hash(PASSWORD)},user",
    ]
    report = await core.accounts.import_csv(lines)
    assert report.created == 4
    assert [line.split(" ", 2)[:2] for line in report.skipped] == [
        ["line", "6"],
        ["line", "7"],
        ["line", "8"],
        ["line", "9"],
        ["line", "10"],
    ]
    assert "unsupported password hash format" in report.skipped[0]
    assert "already exists" in report.skipped[2]
    assert "already exists" in report.skipped[4]
    store = core.store
    expected: dict[str, tuple[str, ...]] = {
        "bcrypt@example.com": ("user", "admin"),
        "passlib@example.com": ("user",),
        "django@example.com": ("ops", "user"),
        "argon@example.com": ("user",),
    }
    for email, roles in expected.items():
        user = await store.users.by_email(email)
        assert isinstance(user, User)
        assert (user.roles, user.email_verified) == (roles, True)
        pair = await core.sessions.login(email, PASSWORD, CALL)
        assert core.authenticate_access_token(pair.access_token).email == email
    assert await store.users.by_email("md5@example.com") is None


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("email,password", id="missing-roles"),
        pytest.param("mail,password_hash,roles", id="misspelt"),
        pytest.param("", id="empty"),
    ],
)
async def test_import_csv_refuses_a_bad_header(core: AuthCore, header: str) -> None:
    with pytest.raises(InvalidRequest, match="header"):
        await core.accounts.import_csv([header] if header else [])


# -- the last admin ----------------------------------------------------------------------------

LAST_ADMIN_CHANGES = [
    pytest.param({"roles": ["user"]}, id="demoted"),
    pytest.param({"disabled": True}, id="disabled"),
    pytest.param({"roles": ["user"], "disabled": True}, id="both"),
]


@pytest.mark.parametrize("changes", LAST_ADMIN_CHANGES)
async def test_the_last_admin_cannot_be_demoted_or_disabled(
    core: AuthCore, changes: dict[str, Any]
) -> None:
    admin = await core.accounts.create(EMAIL, PASSWORD, roles=("admin", "user"), verified=True)
    # A disabled admin and a plain user do not count as someone left to manage users.
    spare = await core.accounts.create("spare@example.com", PASSWORD, roles=("admin",))
    await core.accounts.update(spare.id, {"disabled": True}, admin.id, CALL)
    await core.accounts.create("plain@example.com", PASSWORD)
    with pytest.raises(GatewayError) as caught:
        await core.accounts.update(admin.id, changes, admin.id, CALL)
    assert (caught.value.status, caught.value.code) == (409, "last_admin")
    with pytest.raises(GatewayError) as caught:
        await core.accounts.delete(admin.id, admin.id, CALL)
    assert (caught.value.status, caught.value.code) == (409, "last_admin")
    assert await core.accounts.get(admin.id) == admin
    # Other changes of the last admin still go through.
    renamed = await core.accounts.update(admin.id, {"name": "Ada"}, admin.id, CALL)
    assert (renamed.name, renamed.roles, renamed.disabled) == ("Ada", ("admin", "user"), False)


async def test_an_admin_may_go_while_another_enabled_admin_remains(core: AuthCore) -> None:
    first = await core.accounts.create(EMAIL, PASSWORD, roles=("admin",), verified=True)
    second = await core.accounts.create("bob@example.com", PASSWORD, roles=("admin",))
    demoted = await core.accounts.update(first.id, {"roles": ["user"]}, first.id, CALL)
    assert demoted.roles == ("user",)
    with pytest.raises(GatewayError) as caught:
        await core.accounts.delete(second.id, second.id, CALL)
    assert caught.value.code == "last_admin"
    await core.accounts.update(first.id, {"roles": ["admin"]}, second.id, CALL)
    await core.accounts.delete(second.id, second.id, CALL)
    with pytest.raises(NotFound):
        await core.accounts.get(second.id)


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    core: AuthCore, database_url: str, tmp_path: Any
) -> None:
    """Two workers (two auth cores, two connection pools) each demote the other admin at the
    same moment: exactly one change goes through."""
    from tests import support

    first = await core.accounts.create(EMAIL, PASSWORD, roles=("admin",), verified=True)
    second = await core.accounts.create("bob@example.com", PASSWORD, roles=("admin",))
    other = AuthCore(support.auth_settings(tmp_path, database_url=database_url))
    await other.start()
    try:
        for _ in range(5):
            outcomes = await asyncio.gather(
                core.accounts.update(second.id, {"roles": ["user"]}, first.id, CALL),
                other.accounts.update(first.id, {"disabled": True}, second.id, CALL),
                return_exceptions=True,
            )
            refusals = [o for o in outcomes if isinstance(o, GatewayError)]
            assert [error.code for error in refusals] == ["last_admin"], outcomes
            admins = await core.store.users.lock_admins()
            assert len(admins) == 1
            # Both admins again for the next round.
            await core.accounts.update(second.id, {"roles": ["admin"]}, None, CALL)
            await core.accounts.update(first.id, {"disabled": False}, None, CALL)
    finally:
        await other.close()
