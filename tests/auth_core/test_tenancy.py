"""Tenants: validation of their origin and IP whitelists, changes published as revocations,
and the per-worker policy cache that follows `RevocationSet.generation`."""

from __future__ import annotations

from typing import Any

import pytest

from auth_core.errors import InvalidRequest, NotFound
from auth_core.models import Tenant
from auth_core.revocation import CREDENTIAL, SESSION, TENANT, TOKEN, USER
from auth_core.service import AuthCore, CallInfo
from auth_core.tenancy import MAX_ORIGINS, TenantPolicy, valid_ip_list, valid_origins
from tests.auth_core.helpers import another_worker, sync

CALL = CallInfo(ip="192.0.2.1", request_id="req-t")

# -- validation (no database) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        pytest.param([], [], id="empty"),
        pytest.param(["https://app.example.com"], ["https://app.example.com"], id="https"),
        pytest.param(["http://localhost:3000"], ["http://localhost:3000"], id="localhost-port"),
        pytest.param(["HTTPS://App.Example.COM"], ["https://app.example.com"], id="lower-cased"),
        pytest.param(["https://a.example:443"], ["https://a.example"], id="default-port-dropped"),
        pytest.param(["http://a.example:80"], ["http://a.example"], id="default-http-port"),
        pytest.param(["https://a.example:8443"], ["https://a.example:8443"], id="other-port"),
        pytest.param([" https://a.example "], ["https://a.example"], id="spaces-around"),
        pytest.param(["http://[::1]:8080"], ["http://[::1]:8080"], id="ipv6-host"),
        pytest.param(["https://192.0.2.1"], ["https://192.0.2.1"], id="ipv4-host"),
        pytest.param(["https://*.example.com"], ["https://*.example.com"], id="wildcard"),
        pytest.param(
            ["https://*.Example.COM:8443"], ["https://*.example.com:8443"], id="wildcard-port"
        ),
        pytest.param(
            ["https://a.example", "https://A.example:443", "https://b.example"],
            ["https://a.example", "https://b.example"],
            id="duplicates-dropped-in-order",
        ),
        pytest.param(
            [f"https://t{i}.example" for i in range(MAX_ORIGINS)],
            [f"https://t{i}.example" for i in range(MAX_ORIGINS)],
            id="at-the-limit",
        ),
    ],
)
def test_valid_origins_accepts(given: list[object], kept: list[str]) -> None:
    assert valid_origins(given) == kept


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("https://a.example", id="not-a-list"),
        pytest.param(None, id="none"),
        pytest.param({"https://a.example": True}, id="mapping"),
        pytest.param([5], id="not-a-string"),
        pytest.param([None], id="none-entry"),
        pytest.param(["a.example"], id="no-scheme"),
        pytest.param(["//a.example"], id="scheme-relative"),
        pytest.param(["https://a.example/"], id="trailing-slash"),
        pytest.param(["https://a.example/app"], id="path"),
        pytest.param(["https://a.example?x=1"], id="query"),
        pytest.param(["https://a.example#top"], id="fragment"),
        pytest.param(["https://user@a.example"], id="userinfo"),
        pytest.param(["https://a.example:99999"], id="port-out-of-range"),
        pytest.param(["ftp://a.example"], id="other-scheme"),
        pytest.param(["null"], id="null-origin"),
        pytest.param(["*"], id="star"),
        pytest.param(["https://"], id="no-host"),
        pytest.param(["https://*.example.com/x"], id="wildcard-with-path"),
        pytest.param(["ftp://*.example.com"], id="wildcard-other-scheme"),
        pytest.param(["*.example.com"], id="wildcard-without-scheme"),
        pytest.param(["https://*"], id="bare-wildcard"),
        pytest.param(["https://*."], id="wildcard-of-nothing"),
        pytest.param(["https://*.*.example.com"], id="two-wildcards"),
        pytest.param(["https://exa mple.com"], id="space-in-host"),
        pytest.param(["https://<script>"], id="markup-as-host"),
        pytest.param(
            [f"https://t{i}.example" for i in range(MAX_ORIGINS + 1)], id="over-the-limit"
        ),
    ],
)
def test_valid_origins_refuses(given: object) -> None:
    with pytest.raises(InvalidRequest):
        valid_origins(given)


def test_valid_origins_names_the_bad_entry() -> None:
    with pytest.raises(InvalidRequest) as caught:
        valid_origins(["https://good.example", "https://bad.example/path"])
    assert "https://bad.example/path" in caught.value.detail
    assert "good.example" not in caught.value.detail


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        pytest.param([], [], id="empty"),
        pytest.param(["203.0.113.7"], ["203.0.113.7/32"], id="address"),
        pytest.param(["10.0.0.0/8", "2001:db8::/32"], ["10.0.0.0/8", "2001:db8::/32"], id="cidrs"),
        pytest.param(["10.0.0.0/8", " 10.0.0.0/8"], ["10.0.0.0/8"], id="duplicates-dropped"),
        pytest.param(["192.0.2.1", "192.0.2.1/32"], ["192.0.2.1/32"], id="same-in-two-forms"),
    ],
)
def test_valid_ip_list_accepts(given: list[object], kept: list[str]) -> None:
    assert valid_ip_list(given) == kept


@pytest.mark.parametrize(
    ("given", "named"),
    [
        pytest.param("10.0.0.0/8", None, id="not-a-list"),
        pytest.param(None, None, id="none"),
        pytest.param(["10.0.0.0/8", "junk"], "junk", id="junk"),
        pytest.param(["10.0.0.1/8"], "10.0.0.1/8", id="host-bits"),
        pytest.param(["10.0.0.0/33"], "10.0.0.0/33", id="prefix-too-long"),
        pytest.param([None], "None", id="none-entry"),
        pytest.param([""], "''", id="empty-entry"),
    ],
)
def test_valid_ip_list_refuses(given: object, named: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        valid_ip_list(given)
    if named is not None:
        assert named in caught.value.detail


# -- the service (both backends) ---------------------------------------------------------------


async def a_tenant(core: AuthCore, name: str = "Acme", **lists: Any) -> Tenant:
    return await core.tenants.create(
        name,
        lists.get("origins", ["https://app.acme.example"]),
        lists.get("ip_whitelist", ["203.0.113.0/24"]),
        None,
        CALL,
    )


async def revocations_of(core: AuthCore, kind: str) -> list[str]:
    return [r.value for r in await core.store.revocations.since(0) if r.kind == kind]


async def policy_of(core: AuthCore, tenant_id: str) -> TenantPolicy:
    answer = core.tenants.policy(tenant_id)
    policy = answer if isinstance(answer, TenantPolicy) or answer is None else await answer
    assert policy is not None
    return policy


async def test_create_validates_and_normalises(core: AuthCore) -> None:
    tenant = await core.tenants.create(
        " Acme ", ["HTTPS://App.Acme.example:443"], ["203.0.113.7"], "usr_admin", CALL
    )
    assert tenant.name == "Acme"
    assert tenant.origins == ("https://app.acme.example",)
    assert tenant.ip_whitelist == ("203.0.113.7/32",)
    assert await core.tenants.get(tenant.id) == tenant
    [event] = await core.store.audit.list(event="tenant_create")
    assert (event["actor_id"], event["detail"]["tenant_id"]) == ("usr_admin", tenant.id)


@pytest.mark.parametrize(
    ("name", "origins", "ip_whitelist"),
    [
        pytest.param("", [], [], id="empty-name"),
        pytest.param("x" * 201, [], [], id="long-name"),
        pytest.param(None, [], [], id="no-name"),
        pytest.param("Acme", ["https://a.example/"], [], id="bad-origin"),
        pytest.param("Acme", [], ["10.0.0.1/8"], id="bad-cidr"),
        pytest.param("Acme", None, [], id="origins-missing"),
    ],
)
async def test_create_refuses_bad_input_and_creates_nothing(
    core: AuthCore, name: object, origins: object, ip_whitelist: object
) -> None:
    generation = core.revoked.generation
    with pytest.raises(InvalidRequest):
        await core.tenants.create(name, origins, ip_whitelist, None, CALL)
    assert await core.store.tenants.list() == []
    assert core.revoked.generation == generation


async def test_get_of_an_unknown_tenant(core: AuthCore) -> None:
    with pytest.raises(NotFound):
        await core.tenants.get("ten_missing")
    assert await core.tenants.load_policy("ten_missing") is None


async def test_update_publishes_a_tenant_revocation(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    generation = core.revoked.generation
    updated = await core.tenants.update(
        tenant.id,
        {"ip_whitelist": ["198.51.100.0/24"], "origins": ["https://new.example"]},
        "usr_admin",
        CALL,
    )
    assert updated.ip_whitelist == ("198.51.100.0/24",)
    assert updated.origins == ("https://new.example",)
    assert updated.name == tenant.name
    assert core.revoked.generation == generation + 1
    assert (await revocations_of(core, TENANT))[-1] == tenant.id
    stored = await core.store.tenants.get(tenant.id)
    assert stored == updated
    [event] = await core.store.audit.list(event="tenant_update")
    assert event["detail"]["changed"] == ["ip_whitelist", "origins"]
    # Another worker learns of it at its next sync.
    async with another_worker(core) as other:
        seen = other.revoked.generation
        await core.tenants.update(tenant.id, {"name": "Acme Ltd"}, None, CALL)
        await sync(other)
        assert other.revoked.generation == seen + 1


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"id": "ten_other"}, id="id"),
        pytest.param({"created_at": 0}, id="created-at"),
        pytest.param({"ip_whitelist": ["junk"]}, id="bad-ip-list"),
        pytest.param({"origins": ["https://a.example/path"]}, id="bad-origins"),
        pytest.param({"name": ""}, id="empty-name"),
        pytest.param({"name": "ok", "ip_whitelist": "10.0.0.0/8"}, id="one-good-one-bad"),
    ],
)
async def test_a_refused_update_changes_nothing(core: AuthCore, changes: dict[str, Any]) -> None:
    tenant = await a_tenant(core)
    generation = core.revoked.generation
    with pytest.raises(InvalidRequest):
        await core.tenants.update(tenant.id, changes, None, CALL)
    assert await core.tenants.get(tenant.id) == tenant
    assert core.revoked.generation == generation


async def test_update_of_an_unknown_tenant(core: AuthCore) -> None:
    generation = core.revoked.generation
    with pytest.raises(NotFound):
        await core.tenants.update("ten_missing", {"name": "x"}, None, CALL)
    assert core.revoked.generation == generation
    assert await revocations_of(core, TENANT) == []


# -- the policy cache --------------------------------------------------------------------------


async def test_the_policy_is_cached_until_the_generation_changes(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    loaded = await core.tenants.load_policy(tenant.id)
    assert loaded is not None
    assert (loaded.tenant, loaded.generation) == (tenant, core.revoked.generation)
    assert loaded.ips.allows("203.0.113.5")
    assert not loaded.ips.allows("198.51.100.5")
    assert loaded.origins.allows("https://app.acme.example")
    # Answered at once, the very same object, as long as nothing was revoked.
    assert core.tenants.cached_policy(tenant.id) is loaded
    assert core.tenants.policy(tenant.id) is loaded
    assert core.tenants.policy(tenant.id) is loaded
    # A revocation that voids cached credentials drops it, even one about something else.
    await core.revoke(CREDENTIAL, "key_unrelated")
    assert core.tenants.cached_policy(tenant.id) is None
    reloaded = await policy_of(core, tenant.id)
    assert reloaded is not loaded
    assert reloaded.tenant == tenant
    assert core.tenants.policy(tenant.id) is reloaded


@pytest.mark.parametrize(
    ("kind", "voids"),
    [
        pytest.param(CREDENTIAL, True, id="credential"),
        pytest.param(TENANT, True, id="tenant"),
        pytest.param(USER, True, id="user"),
        pytest.param(SESSION, False, id="session"),
        pytest.param(TOKEN, False, id="token"),
    ],
)
async def test_which_revocations_void_the_policy_cache(
    core: AuthCore, kind: str, voids: bool
) -> None:
    tenant = await a_tenant(core)
    loaded = await policy_of(core, tenant.id)
    generation = core.revoked.generation
    await core.revoke(kind, "some-id")
    assert core.revoked.generation == generation + (1 if voids else 0)
    assert core.tenants.cached_policy(tenant.id) is (None if voids else loaded)


async def test_a_whitelist_change_replaces_the_cached_policy_here_and_elsewhere(
    core: AuthCore,
) -> None:
    tenant = await a_tenant(core)
    async with another_worker(core) as other:
        before = await policy_of(other, tenant.id)
        assert before.ips.allows("203.0.113.5")
        await policy_of(core, tenant.id)
        await core.tenants.update(tenant.id, {"ip_whitelist": ["198.51.100.0/24"]}, None, CALL)
        here = await policy_of(core, tenant.id)
        assert not here.ips.allows("203.0.113.5")
        assert here.ips.allows("198.51.100.5")
        await sync(other)
        assert other.tenants.cached_policy(tenant.id) is None
        there = await policy_of(other, tenant.id)
        assert there.tenant.ip_whitelist == ("198.51.100.0/24",)
        assert not there.ips.allows("203.0.113.5")
        assert there.ips.allows("::ffff:198.51.100.5")


async def test_the_origin_index_holds_every_tenants_origins(core: AuthCore) -> None:
    await a_tenant(core, "A", origins=["https://a.example"])
    await a_tenant(core, "B", origins=["https://*.b.example"])
    index = await core.tenants.load_origin_index()
    assert core.tenants.cached_origin_index() is index
    assert index.origins.allows("https://a.example")
    assert index.origins.allows("https://app.b.example")
    assert not index.origins.allows("https://c.example")
    # A new tenant is an event: the index is read again and has its origins.
    await a_tenant(core, "C", origins=["https://c.example"])
    assert core.tenants.cached_origin_index() is None
    fresh = await core.tenants.load_origin_index()
    assert fresh.origins.allows("https://c.example")
    assert fresh.origins.allows("https://a.example")
