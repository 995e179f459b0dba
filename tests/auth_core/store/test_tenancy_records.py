"""The records of tenants, API keys and personal access tokens (migration 0002), on both
backends."""

from __future__ import annotations

import dataclasses
import time

import pytest

from auth_core.models import ApiKey, User
from auth_core.store import UniqueViolation
from auth_core.store.records import Store


async def a_tenant(store: Store, name: str = "Acme") -> str:
    tenant = await store.tenants.create(name, ["https://app.acme.example"], ["10.0.0.0/8"])
    return tenant.id


async def a_key(
    store: Store,
    tenant_id: str,
    key_hash: str = "h1",
    *,
    expires_at: float | None = None,
    allow_ips: list[str] | None = None,
) -> ApiKey:
    return await store.api_keys.create(
        tenant_id,
        key_hash,
        "gwk_abcdefgh",
        name="backend",
        allow_ips=allow_ips,
        expires_at=expires_at,
    )


async def a_user(store: Store, email: str = "ada@example.com") -> User:
    return await store.users.create(email, "$argon2id$stand-in")


# -- tenants -----------------------------------------------------------------------------------


async def test_tenant_create_and_get(store: Store) -> None:
    before = time.time()
    tenant = await store.tenants.create(
        "Acme", ["https://app.acme.example", "https://*.acme.example"], ["10.0.0.0/8", "::1/128"]
    )
    assert tenant.id.startswith("ten_")
    assert tenant.name == "Acme"
    assert tenant.origins == ("https://app.acme.example", "https://*.acme.example")
    assert tenant.ip_whitelist == ("10.0.0.0/8", "::1/128")
    assert before <= tenant.created_at == tenant.updated_at <= time.time()
    assert await store.tenants.get(tenant.id) == tenant
    assert await store.tenants.get("ten_missing") is None
    public = tenant.public()
    assert public["origins"] == ["https://app.acme.example", "https://*.acme.example"]
    assert public["ip_whitelist"] == ["10.0.0.0/8", "::1/128"]


async def test_tenant_with_empty_lists(store: Store) -> None:
    tenant = await store.tenants.create("Bare", [], [])
    assert (tenant.origins, tenant.ip_whitelist) == ((), ())
    assert await store.tenants.get(tenant.id) == tenant


async def test_tenant_update_changes_only_what_is_given(store: Store) -> None:
    tenant = await store.tenants.create("Acme", ["https://a.example"], ["10.0.0.0/8"])
    renamed = await store.tenants.update(tenant.id, name="Acme Ltd")
    assert renamed is not None
    assert (renamed.name, renamed.origins, renamed.ip_whitelist) == (
        "Acme Ltd",
        ("https://a.example",),
        ("10.0.0.0/8",),
    )
    assert renamed.created_at == tenant.created_at
    assert renamed.updated_at >= tenant.updated_at
    moved = await store.tenants.update(tenant.id, ip_whitelist=["192.0.2.0/24", "2001:db8::/32"])
    assert moved is not None
    assert moved.ip_whitelist == ("192.0.2.0/24", "2001:db8::/32")
    assert (moved.name, moved.origins) == ("Acme Ltd", ("https://a.example",))
    both = await store.tenants.update(tenant.id, origins=["https://b.example"], ip_whitelist=[])
    assert both is not None
    # An empty list clears a whitelist; it is not "leave it as it is".
    assert (both.origins, both.ip_whitelist) == (("https://b.example",), ())
    assert await store.tenants.get(tenant.id) == both
    untouched = await store.tenants.update(tenant.id)
    assert untouched is not None
    assert (untouched.name, untouched.origins, untouched.ip_whitelist) == (
        both.name,
        both.origins,
        both.ip_whitelist,
    )
    assert await store.tenants.update("ten_missing", name="x") is None


async def test_tenant_list_pages_in_creation_order(store: Store) -> None:
    created = [await store.tenants.create(f"t{i}", [], []) for i in range(5)]
    assert [t.id for t in await store.tenants.list()] == [t.id for t in created]
    page = await store.tenants.list(limit=2, offset=2)
    assert [t.name for t in page] == ["t2", "t3"]
    assert await store.tenants.list(offset=5) == []


async def test_all_origins_gives_every_tenants_list(store: Store) -> None:
    assert await store.tenants.all_origins() == []
    first = await store.tenants.create("a", ["https://a.example", "https://*.a.example"], [])
    second = await store.tenants.create("b", [], ["10.0.0.0/8"])
    third = await store.tenants.create("c", ["http://localhost:3000"], [])
    assert sorted(await store.tenants.all_origins()) == sorted(
        [
            (first.id, ["https://a.example", "https://*.a.example"]),
            (second.id, []),
            (third.id, ["http://localhost:3000"]),
        ]
    )


# -- API keys ----------------------------------------------------------------------------------


async def test_key_create_and_look_up(store: Store) -> None:
    tenant_id = await a_tenant(store)
    before = time.time()
    key = await store.api_keys.create(
        tenant_id,
        "hash-of-the-key",
        "gwk_abcdefgh",
        name="backend",
        allow_ips=["10.1.0.0/16"],
        expires_at=before + 3600,
    )
    assert key.id.startswith("key_")
    assert (key.tenant_id, key.name, key.prefix) == (tenant_id, "backend", "gwk_abcdefgh")
    assert key.allow_ips == ("10.1.0.0/16",)
    assert before <= key.created_at <= time.time()
    assert key.expires_at == pytest.approx(before + 3600)
    assert (key.last_used_at, key.revoked_at, key.rotated_to) == (None, None, None)
    assert key.usable(time.time())
    assert not key.usable(before + 3601)
    assert await store.api_keys.by_hash("hash-of-the-key") == key
    assert await store.api_keys.get(key.id) == key
    assert await store.api_keys.by_hash("gwk_abcdefgh") is None
    assert await store.api_keys.by_hash("other") is None
    assert await store.api_keys.get("key_missing") is None


async def test_key_without_own_list_or_expiry(store: Store) -> None:
    tenant_id = await a_tenant(store)
    key = await store.api_keys.create(
        tenant_id, "h", "gwk_abcdefgh", name=None, allow_ips=None, expires_at=None
    )
    assert (key.name, key.allow_ips, key.expires_at) == (None, None, None)
    # None is "the tenant's list alone"; an empty list is a list of its own (nobody).
    empty = await store.api_keys.create(
        tenant_id, "h2", "gwk_abcdefgh", name=None, allow_ips=[], expires_at=None
    )
    assert empty.allow_ips == ()
    assert (await store.api_keys.by_hash("h2")) == empty
    assert key.usable(time.time() + 10 * 365 * 86400)


async def test_key_hash_is_unique(store: Store) -> None:
    tenant_id = await a_tenant(store)
    await a_key(store, tenant_id, "same")
    other = await a_tenant(store, "Other")
    with pytest.raises(UniqueViolation):
        await a_key(store, other, "same")
    assert await store.api_keys.of_tenant(other) == []


async def test_keys_of_a_tenant_in_creation_order(store: Store) -> None:
    acme = await a_tenant(store, "Acme")
    other = await a_tenant(store, "Other")
    first = await a_key(store, acme, "h1")
    mine = await a_key(store, other, "h2")
    second = await a_key(store, acme, "h3")
    assert [k.id for k in await store.api_keys.of_tenant(acme)] == [first.id, second.id]
    assert await store.api_keys.of_tenant(other) == [mine]
    assert await store.api_keys.of_tenant("ten_missing") == []


async def test_key_revoke_once(store: Store) -> None:
    tenant_id = await a_tenant(store)
    key = await a_key(store, tenant_id)
    before = time.time()
    revoked = await store.api_keys.revoke(key.id)
    assert revoked is not None
    assert revoked.id == key.id
    assert revoked.revoked_at is not None
    assert before <= revoked.revoked_at <= time.time()
    assert not revoked.usable(time.time())
    assert await store.api_keys.revoke(key.id) is None
    assert await store.api_keys.revoke("key_missing") is None
    again = await store.api_keys.by_hash("h1")
    assert again is not None
    assert again.revoked_at == revoked.revoked_at  # the second call did not move it


@pytest.mark.parametrize(
    ("expires_in", "until_in", "ends_in"),
    [
        pytest.param(None, 3600, 3600, id="no-expiry-gets-the-grace"),
        pytest.param(86400, 3600, 3600, id="later-expiry-is-shortened"),
        pytest.param(600, 3600, 600, id="earlier-expiry-is-kept"),
    ],
)
async def test_key_retire_shortens_but_never_lengthens(
    store: Store, expires_in: float | None, until_in: float, ends_in: float
) -> None:
    tenant_id = await a_tenant(store)
    now = time.time()
    old = await a_key(
        store, tenant_id, "old", expires_at=None if expires_in is None else now + expires_in
    )
    new = await a_key(store, tenant_id, "new")
    retired = await store.api_keys.retire(old.id, new.id, now + until_in)
    assert retired is not None
    assert retired.rotated_to == new.id
    assert retired.expires_at == pytest.approx(now + ends_in)
    assert retired.revoked_at is None
    assert await store.api_keys.get(old.id) == retired
    untouched = await store.api_keys.get(new.id)
    assert untouched == new


async def test_key_retire_happens_once_and_not_to_revoked_keys(store: Store) -> None:
    tenant_id = await a_tenant(store)
    now = time.time()
    old = await a_key(store, tenant_id, "old")
    first = await a_key(store, tenant_id, "first")
    second = await a_key(store, tenant_id, "second")
    assert await store.api_keys.retire(old.id, first.id, now + 3600) is not None
    assert await store.api_keys.retire(old.id, second.id, now + 60) is None
    kept = await store.api_keys.get(old.id)
    assert kept is not None
    assert kept.rotated_to == first.id
    assert kept.expires_at == pytest.approx(now + 3600)
    await store.api_keys.revoke(second.id)
    assert await store.api_keys.retire(second.id, first.id, now + 60) is None
    gone = await store.api_keys.get(second.id)
    assert gone is not None
    assert (gone.rotated_to, gone.expires_at) == (None, None)
    assert await store.api_keys.retire("key_missing", first.id, now) is None


async def test_key_touch_only_moves_forward(store: Store) -> None:
    tenant_id = await a_tenant(store)
    key = await a_key(store, tenant_id, "h1")
    other = await a_key(store, tenant_id, "h2")
    await store.api_keys.touch([(key.id, 1000.0)])
    assert await store.api_keys.by_hash("h1") == dataclasses.replace(key, last_used_at=1000.0)
    await store.api_keys.touch([(key.id, 900.0)])  # a slower worker's older news
    stored = await store.api_keys.get(key.id)
    assert stored is not None
    assert stored.last_used_at == 1000.0
    await store.api_keys.touch([(key.id, 2000.5), (other.id, 1500.0), ("key_missing", 1.0)])
    stored = await store.api_keys.get(key.id)
    stored_other = await store.api_keys.get(other.id)
    assert stored is not None
    assert stored_other is not None
    assert (stored.last_used_at, stored_other.last_used_at) == (2000.5, 1500.0)
    await store.api_keys.touch([])


# -- personal access tokens --------------------------------------------------------------------


async def test_pat_create_and_look_up(store: Store) -> None:
    user = await a_user(store)
    before = time.time()
    pat = await store.pats.create(
        user.id,
        "pat-hash",
        "gwp_abcdefgh",
        name="ci",
        scopes=["read", "deploy"],
        expires_at=before + 86400,
    )
    assert pat.id.startswith("pat_")
    assert (pat.user_id, pat.name, pat.prefix, pat.scopes) == (
        user.id,
        "ci",
        "gwp_abcdefgh",
        ("read", "deploy"),
    )
    assert before <= pat.created_at <= time.time()
    assert pat.expires_at == pytest.approx(before + 86400)
    assert pat.last_used_at is None
    assert await store.pats.by_hash("pat-hash") == pat
    assert await store.pats.by_hash("gwp_abcdefgh") is None
    assert await store.pats.count(user.id) == 1
    public = pat.public()
    assert public["prefix"] == "gwp_abcdefgh"
    assert "pat-hash" not in public.values()
    assert "token_hash" not in public


async def test_pat_hash_is_unique(store: Store) -> None:
    user = await a_user(store)
    await store.pats.create(user.id, "h", "gwp_x", name="a", scopes=[], expires_at=None)
    with pytest.raises(UniqueViolation):
        await store.pats.create(user.id, "h", "gwp_x", name="b", scopes=[], expires_at=None)
    assert await store.pats.count(user.id) == 1


async def test_pats_of_a_user_in_creation_order(store: Store) -> None:
    ada = await a_user(store, "ada@example.com")
    bob = await a_user(store, "bob@example.com")
    first = await store.pats.create(ada.id, "h1", "gwp_1", name="a", scopes=[], expires_at=None)
    theirs = await store.pats.create(bob.id, "h2", "gwp_2", name="b", scopes=[], expires_at=None)
    second = await store.pats.create(ada.id, "h3", "gwp_3", name="c", scopes=[], expires_at=None)
    assert await store.pats.of_user(ada.id) == [first, second]
    assert await store.pats.of_user(bob.id) == [theirs]
    assert await store.pats.of_user("usr_missing") == []
    assert (await store.pats.count(ada.id), await store.pats.count(bob.id)) == (2, 1)
    assert await store.pats.count("usr_missing") == 0


async def test_pat_delete_only_by_its_owner(store: Store) -> None:
    ada = await a_user(store, "ada@example.com")
    bob = await a_user(store, "bob@example.com")
    pat = await store.pats.create(ada.id, "h1", "gwp_1", name="a", scopes=[], expires_at=None)
    assert await store.pats.delete(bob.id, pat.id) is False
    assert await store.pats.by_hash("h1") == pat
    assert await store.pats.delete(ada.id, pat.id) is True
    assert await store.pats.by_hash("h1") is None
    assert await store.pats.delete(ada.id, pat.id) is False
    assert await store.pats.delete(ada.id, "pat_missing") is False


async def test_pat_touch_only_moves_forward(store: Store) -> None:
    user = await a_user(store)
    pat = await store.pats.create(user.id, "h1", "gwp_1", name="a", scopes=[], expires_at=None)
    await store.pats.touch([(pat.id, 1000.0)])
    await store.pats.touch([(pat.id, 999.0)])
    stored = await store.pats.by_hash("h1")
    assert stored is not None
    assert stored.last_used_at == 1000.0
    await store.pats.touch([(pat.id, 1000.25), ("pat_missing", 5.0)])
    stored = await store.pats.by_hash("h1")
    assert stored is not None
    assert stored.last_used_at == 1000.25


async def test_deleting_a_user_takes_their_pats(store: Store) -> None:
    ada = await a_user(store, "ada@example.com")
    bob = await a_user(store, "bob@example.com")
    for number in range(3):
        await store.pats.create(
            ada.id, f"ada{number}", "gwp_a", name=f"t{number}", scopes=[], expires_at=None
        )
    kept = await store.pats.create(bob.id, "bob0", "gwp_b", name="t", scopes=[], expires_at=None)
    assert await store.users.delete(ada.id) is True
    assert await store.pats.of_user(ada.id) == []
    assert await store.pats.count(ada.id) == 0
    for number in range(3):
        assert await store.pats.by_hash(f"ada{number}") is None
    assert await store.pats.of_user(bob.id) == [kept]
    rows = await store.db.fetch("SELECT user_id FROM pats")
    assert [row["user_id"] for row in rows] == [bob.id]
