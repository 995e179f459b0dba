"""SDK sessions (docs/authentication.md), on both backends: a tenant's backend finds or creates its
end user by `external_user_id` and gets a token pair bound to the tenant; refresh and logout are
held to the tenant, and a refresh token of another tenant is refused before it is spent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from auth_core.errors import GatewayError, InvalidRequest, InvalidToken, TokenRevoked
from auth_core.models import Tenant
from auth_core.service import AuthCore, CallInfo
from auth_core.sessions import TokenPair
from tests import support
from tests.auth_core.helpers import PASSWORD, refused

CALL = CallInfo(ip="203.0.113.10", user_agent="sdk/1.0", request_id="req-s")


async def a_tenant(core: AuthCore, name: str = "Acme") -> Tenant:
    return await core.tenants.create(name, ["https://app.example"], ["203.0.113.0/24"], None, CALL)


async def open_session(core: AuthCore, tenant: Tenant, **body: Any) -> TokenPair:
    return await core.sdk.open(tenant.id, "key_test", body, CALL)


async def test_open_creates_the_end_user_then_finds_them(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    first = await open_session(
        core, tenant, external_user_id="u-42", email="Ada@Example.com", name="Ada"
    )
    user = first.user
    assert user.id.startswith("usr_")
    assert (user.tenant_id, user.external_id) == (tenant.id, "u-42")
    assert (user.email, user.name, user.roles) == ("ada@example.com", "Ada", ("user",))
    assert user.password_hash is None
    second = await open_session(core, tenant, external_user_id="u-42")
    assert second.user.id == user.id
    assert second.session.id != first.session.id
    # An integer id is the same id as its decimal string, and spaces around it do not count.
    third = await open_session(core, tenant, external_user_id=" u-42 ")
    assert third.user.id == user.id
    numeric = await open_session(core, tenant, external_user_id=7)
    assert (await open_session(core, tenant, external_user_id="7")).user.id == numeric.user.id
    store = core.store
    assert [u.id for u in await store.users.list(tenant_id=tenant.id)] == [user.id, numeric.user.id]
    # An end user has no e-mail login: their address is only a contact.
    assert await store.users.by_email("ada@example.com") is None
    with pytest.raises(GatewayError):
        await core.sessions.login("ada@example.com", "", CALL)
    [session_event, *_] = await store.audit.list(event="sdk_session")
    assert session_event["detail"]["tenant_id"] == tenant.id
    assert session_event["detail"]["key_id"] == "key_test"


async def test_a_platform_account_with_the_same_email_is_another_user(core: AuthCore) -> None:
    platform = await core.accounts.create("ada@example.com", PASSWORD, verified=True)
    tenant = await a_tenant(core)
    pair = await open_session(core, tenant, external_user_id="ada", email="ada@example.com")
    assert pair.user.id != platform.id
    login = await core.sessions.login("ada@example.com", PASSWORD, CALL)
    assert login.user.id == platform.id
    assert core.authenticate_access_token(login.access_token).tenant_id is None


async def test_two_tenants_with_the_same_external_id_get_two_users(core: AuthCore) -> None:
    acme = await a_tenant(core, "Acme")
    other = await a_tenant(core, "Other")
    mine = await open_session(core, acme, external_user_id="u-1", email="same@example.com")
    theirs = await open_session(core, other, external_user_id="u-1", email="same@example.com")
    assert mine.user.id != theirs.user.id
    assert (mine.user.tenant_id, theirs.user.tenant_id) == (acme.id, other.id)
    assert mine.user.email == theirs.user.email == "same@example.com"
    again = await open_session(core, other, external_user_id="u-1")
    assert again.user.id == theirs.user.id


async def test_tokens_carry_the_tenant(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    pair = await open_session(core, tenant, external_user_id="u-1", roles=["user", "premium"])
    principal = core.authenticate_access_token(pair.access_token)
    assert principal.method == "jwt"
    assert (principal.user_id, principal.tenant_id) == (pair.user.id, tenant.id)
    assert principal.session_id == pair.session.id
    assert principal.roles == ("user", "premium")
    refreshed = await core.sessions.refresh(pair.refresh_token, CALL, tenant_id=tenant.id)
    assert core.authenticate_access_token(refreshed.access_token).tenant_id == tenant.id
    assert pair.body()["user"]["tenant_id"] == tenant.id


@pytest.mark.parametrize(
    "roles",
    [
        pytest.param(["admin"], id="admin"),
        pytest.param(["tenant_admin"], id="tenant-admin"),
        pytest.param(["user", "admin"], id="admin-among-others"),
    ],
)
async def test_reserved_roles_are_refused(core: AuthCore, roles: list[str]) -> None:
    tenant = await a_tenant(core)
    with pytest.raises(InvalidRequest):
        await open_session(core, tenant, external_user_id="u-1", roles=roles)
    store = core.store
    assert await store.users.count() == 0
    # Nor can an existing end user be raised to them.
    pair = await open_session(core, tenant, external_user_id="u-1")
    with pytest.raises(InvalidRequest):
        await open_session(core, tenant, external_user_id="u-1", roles=roles)
    user = await store.users.get(pair.user.id)
    assert user is not None
    assert user.roles == ("user",)
    assert refused(core, pair.access_token) is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-external-id"),
        pytest.param({"external_user_id": ""}, id="empty"),
        pytest.param({"external_user_id": "   "}, id="blank"),
        pytest.param({"external_user_id": "x" * 257}, id="too-long"),
        pytest.param({"external_user_id": True}, id="boolean"),
        pytest.param({"external_user_id": ["u-1"]}, id="list"),
        pytest.param({"external_user_id": "u-1", "email": "not-an-email"}, id="bad-email"),
        pytest.param({"external_user_id": "u-1", "name": 5}, id="bad-name"),
        pytest.param({"external_user_id": "u-1", "roles": "user"}, id="roles-not-a-list"),
        pytest.param({"external_user_id": "u-1", "roles": ["User"]}, id="bad-role"),
    ],
)
async def test_bad_requests_create_nothing(core: AuthCore, body: dict[str, Any]) -> None:
    tenant = await a_tenant(core)
    with pytest.raises(InvalidRequest):
        await open_session(core, tenant, **body)
    assert await core.store.users.count() == 0


async def test_a_role_change_revokes_the_users_earlier_tokens(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    old = await open_session(core, tenant, external_user_id="u-1")
    same = await open_session(core, tenant, external_user_id="u-1", roles=["user"])
    # The same roles: nothing is revoked.
    assert refused(core, old.access_token) is None
    new = await open_session(core, tenant, external_user_id="u-1", roles=["user", "premium"])
    assert new.user.roles == ("user", "premium")
    for pair in (old, same):
        assert refused(core, pair.access_token) is TokenRevoked
        with pytest.raises(InvalidToken):
            await core.sessions.refresh(pair.refresh_token, CALL, tenant_id=tenant.id)
    assert refused(core, new.access_token) is None
    assert core.authenticate_access_token(new.access_token).roles == ("user", "premium")
    await core.sessions.refresh(new.refresh_token, CALL, tenant_id=tenant.id)
    # Not naming roles keeps them, and revokes nothing.
    kept = await open_session(core, tenant, external_user_id="u-1")
    assert kept.user.roles == ("user", "premium")
    assert refused(core, new.access_token) is None


async def test_a_new_contact_address_revokes_tokens_carrying_the_old_one(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    old = await open_session(core, tenant, external_user_id="u-1", email="a@example.com")
    assert core.authenticate_access_token(old.access_token).email == "a@example.com"
    new = await open_session(core, tenant, external_user_id="u-1", email="b@example.com")
    assert refused(core, old.access_token) is TokenRevoked
    assert core.authenticate_access_token(new.access_token).email == "b@example.com"


async def test_a_disabled_end_user_gets_no_session(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    pair = await open_session(core, tenant, external_user_id="u-1")
    await core.accounts.update(pair.user.id, {"disabled": True}, None, CALL)
    with pytest.raises(InvalidRequest):
        await open_session(core, tenant, external_user_id="u-1")


# -- refresh and logout held to the tenant -----------------------------------------------------


async def test_another_tenants_refresh_token_is_refused_and_not_spent(core: AuthCore) -> None:
    acme = await a_tenant(core, "Acme")
    other = await a_tenant(core, "Other")
    pair = await open_session(core, acme, external_user_id="u-1")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await core.sessions.refresh(pair.refresh_token, CALL, tenant_id=other.id)
    # Not spent (a spent token presented again would revoke the session): it still works.
    assert refused(core, pair.access_token) is None
    refreshed = await core.sessions.refresh(pair.refresh_token, CALL, tenant_id=acme.id)
    assert refreshed.session.id == pair.session.id
    assert refused(core, refreshed.access_token) is None


async def test_a_platform_users_refresh_token_is_no_tenants(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    await core.accounts.create("ada@example.com", PASSWORD, verified=True)
    login = await core.sessions.login("ada@example.com", PASSWORD, CALL)
    with pytest.raises(InvalidToken):
        await core.sessions.refresh(login.refresh_token, CALL, tenant_id=tenant.id)
    await core.sessions.refresh(login.refresh_token, CALL)


async def test_refresh_through_the_tenant_still_detects_reuse(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    pair = await open_session(core, tenant, external_user_id="u-1")
    refreshed = await core.sessions.refresh(pair.refresh_token, CALL, tenant_id=tenant.id)
    with pytest.raises(InvalidToken):
        await core.sessions.refresh(pair.refresh_token, CALL, tenant_id=tenant.id)
    # The reuse revoked the whole session.
    assert refused(core, refreshed.access_token) is TokenRevoked
    with pytest.raises(InvalidToken):
        await core.sessions.refresh(refreshed.refresh_token, CALL, tenant_id=tenant.id)


async def test_logout_by_refresh_token_is_held_to_the_tenant(core: AuthCore) -> None:
    acme = await a_tenant(core, "Acme")
    other = await a_tenant(core, "Other")
    pair = await open_session(core, acme, external_user_id="u-1")
    assert await core.sessions.end_by_refresh_token(pair.refresh_token, other.id, CALL) is False
    assert refused(core, pair.access_token) is None
    assert await core.sessions.end_by_refresh_token("gwr_unknown", acme.id, CALL) is False
    assert await core.sessions.end_by_refresh_token(pair.refresh_token, acme.id, CALL) is True
    assert refused(core, pair.access_token) is TokenRevoked
    with pytest.raises(InvalidToken):
        await core.sessions.refresh(pair.refresh_token, CALL, tenant_id=acme.id)
    session = await core.store.sessions.get(pair.session.id)
    assert session is not None
    assert session.revoked_at is not None


async def test_a_later_session_updates_the_name_and_contact_address(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    first = await open_session(core, tenant, external_user_id="u-1", email="a@example.com")
    second = await open_session(
        core, tenant, external_user_id="u-1", email="B@example.com", name="Bea"
    )
    assert second.user.id == first.user.id
    assert (second.user.email, second.user.name) == ("b@example.com", "Bea")
    stored = await core.store.users.get(first.user.id)
    assert stored is not None
    assert (stored.email, stored.name) == ("b@example.com", "Bea")
    # Saying nothing about them changes nothing.
    third = await open_session(core, tenant, external_user_id="u-1")
    assert (third.user.email, third.user.name) == ("b@example.com", "Bea")


async def test_concurrent_first_sessions_of_one_end_user_make_one_user(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    other = AuthCore(core.settings)
    await other.start(follow=False)
    try:
        pairs = await asyncio.gather(
            *(
                worker.sdk.open(tenant.id, None, {"external_user_id": "u-1"}, CALL)
                for worker in (core, other) * 4
            )
        )
    finally:
        await other.close()
    assert len({pair.user.id for pair in pairs}) == 1
    assert len({pair.session.id for pair in pairs}) == 8
    assert await core.store.users.count() == 1
    for pair in pairs:
        assert refused(core, pair.access_token) is None


async def test_end_users_are_exempt_from_required_verification(
    database_url: str, tmp_path: Path
) -> None:
    """GATEWAY_REQUIRE_VERIFIED_EMAIL holds password logins; an end user, vouched for by the
    tenant's API key, has no address of ours to confirm: sessions and refreshes go on."""
    core = AuthCore(
        support.auth_settings(tmp_path, database_url=database_url, require_verified_email=True)
    )
    await core.start()
    try:
        tenant = await a_tenant(core)
        pair = await open_session(core, tenant, external_user_id="u-9", email="eve@example.com")
        assert pair.user.email_verified is False
        refreshed = await core.sessions.refresh(pair.refresh_token, CALL, tenant_id=tenant.id)
        assert refused(core, refreshed.access_token) is None
        # A platform user with the same address, unconfirmed, is held.
        await core.accounts.create("eve@example.com", PASSWORD)
        with pytest.raises(GatewayError) as caught:
            await core.sessions.login("eve@example.com", PASSWORD, CALL)
        assert (caught.value.status, caught.value.code) == (403, "email_not_verified")
    finally:
        await core.close()
