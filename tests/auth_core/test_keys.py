"""API keys through the AuthCore facade, on both backends: the IP whitelists of the tenant and
of the key, refusals without a database look-up, revocation and rotation as this worker and
another one see them, whitelist changes, expiry, and `last_used_at`."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import pytest

from auth_core import credentials
from auth_core.errors import (
    Conflict,
    GatewayError,
    InvalidApiKey,
    InvalidRequest,
    IpNotAllowed,
    NotFound,
)
from auth_core.models import ApiKey, Principal, Tenant
from auth_core.service import AuthCore, CallInfo
from auth_core.stats import TENANT_MISS
from auth_core.store import DatabaseUnavailable
from tests.auth_core.helpers import another_worker, new_credential, settle, sync

CALL = CallInfo(ip="203.0.113.10", user_agent="sdk/1.0", request_id="req-k")
ALLOWED = "203.0.113.10"
ELSEWHERE = "198.51.100.7"


async def a_tenant(
    core: AuthCore, ip_whitelist: Sequence[str] = ("203.0.113.0/24",), name: str = "Acme"
) -> Tenant:
    return await core.tenants.create(name, [], list(ip_whitelist), None, CALL)


async def a_key(core: AuthCore, tenant_id: str, **options: Any) -> tuple[ApiKey, str]:
    return await core.keys.create(tenant_id, actor_id=None, call=CALL, **options)


async def authenticate(core: AuthCore, secret: str, ip: str | None = ALLOWED) -> Principal:
    answer = core.keys.authenticate(secret, ip, CALL)
    if isinstance(answer, Principal):
        return answer
    return await answer


async def refusal(core: AuthCore, secret: str, ip: str | None = ALLOWED) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await authenticate(core, secret, ip)
    return caught.value


def is_cached(core: AuthCore, secret: str, ip: str | None = ALLOWED) -> bool:
    """Whether the key is answered at once (from this worker's cache), without a look-up."""
    return isinstance(core.keys.authenticate(secret, ip, CALL), Principal)


async def stored_key(core: AuthCore, key_id: str) -> ApiKey:
    key = await core.store.api_keys.get(key_id)
    assert key is not None
    return key


# -- creation and the whitelists ---------------------------------------------------------------


async def test_a_created_key_is_shown_once_and_only_its_hash_is_stored(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    key, secret = await a_key(core, tenant.id, name="backend")
    assert credentials.well_formed(secret, credentials.API_KEY_PREFIX)
    assert (key.tenant_id, key.name, key.prefix) == (tenant.id, "backend", secret[:12])
    assert (key.allow_ips, key.expires_at, key.revoked_at) == (None, None, None)
    rows = await core.store.db.fetch("SELECT * FROM api_keys")
    assert len(rows) == 1
    [row] = rows
    assert row["key_hash"] == credentials.credential_hash(secret)
    for value in row.values():
        assert secret[4:] not in str(value)
    assert [k.id for k in await core.store.api_keys.of_tenant(tenant.id)] == [key.id]


async def test_a_key_authenticates_from_an_allowed_address_only(core: AuthCore) -> None:
    tenant = await a_tenant(core, ["203.0.113.0/24", "2001:db8::/32"])
    key, secret = await a_key(core, tenant.id)
    principal = await authenticate(core, secret, ALLOWED)
    assert principal.method == "api_key"
    assert (principal.tenant_id, principal.credential_id) == (tenant.id, key.id)
    assert (principal.user_id, principal.roles, principal.session_id) == (None, (), None)
    # Seen once, the key is answered from the worker's cache, at once.
    assert is_cached(core, secret, ALLOWED)
    for ip in ("203.0.113.255", "::ffff:203.0.113.99", "2001:db8::5"):
        assert (await authenticate(core, secret, ip)).credential_id == key.id
    for ip in (ELSEWHERE, "::ffff:198.51.100.7", "2001:db9::1", "junk", ""):
        error = await refusal(core, secret, ip)
        assert type(error) is IpNotAllowed, ip
        assert (error.status, error.code) == (403, "ip_not_allowed")
    await settle(core)
    refusals = await core.store.audit.list(event="api_key")
    assert len(refusals) == 5
    entry = refusals[-1]
    assert (entry["outcome"], entry["ip"], entry["request_id"]) == ("refused", ALLOWED, "req-k")
    assert entry["detail"]["reason"] == "ip_not_allowed"
    assert (entry["detail"]["key_id"], entry["detail"]["tenant_id"]) == (key.id, tenant.id)


async def test_a_key_first_seen_from_a_wrong_address_is_refused(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    _, secret = await a_key(core, tenant.id)
    assert type(await refusal(core, secret, ELSEWHERE)) is IpNotAllowed
    await authenticate(core, secret, ALLOWED)


async def test_a_keys_own_list_narrows_the_tenants(core: AuthCore) -> None:
    tenant = await a_tenant(core, ["203.0.113.0/24"])
    key, secret = await a_key(core, tenant.id, allow_ips=["203.0.113.8/29", " 198.51.100.0/24"])
    assert key.allow_ips == ("203.0.113.8/29", "198.51.100.0/24")
    _, everywhere = await a_key(core, tenant.id)
    assert (await authenticate(core, secret, "203.0.113.9")).credential_id == key.id
    assert (await authenticate(core, secret, "::ffff:203.0.113.15")).credential_id == key.id
    # On the tenant's list but not on the key's.
    assert type(await refusal(core, secret, "203.0.113.20")) is IpNotAllowed
    # On the key's list but not on the tenant's: a key cannot widen its tenant's list.
    assert type(await refusal(core, secret, "198.51.100.7")) is IpNotAllowed
    # The tenant's other keys are not narrowed.
    await authenticate(core, everywhere, "203.0.113.20")
    await settle(core)
    reasons = [
        (e["detail"]["reason"], e["detail"]["whitelist"])
        for e in await core.store.audit.list(event="api_key")
    ]
    assert sorted(reasons) == [("ip_not_allowed", "key"), ("ip_not_allowed", "tenant")]


@pytest.mark.parametrize(
    "allow_ips",
    [
        pytest.param(["10.0.0.1/8"], id="host-bits"),
        pytest.param(["junk"], id="junk"),
        pytest.param("10.0.0.0/8", id="not-a-list"),
    ],
)
async def test_a_bad_key_list_is_refused(core: AuthCore, allow_ips: object) -> None:
    tenant = await a_tenant(core)
    with pytest.raises(InvalidRequest):
        await a_key(core, tenant.id, allow_ips=allow_ips)
    assert await core.store.api_keys.of_tenant(tenant.id) == []


async def test_a_tenant_without_a_whitelist_accepts_its_keys_from_nowhere(core: AuthCore) -> None:
    tenant = await a_tenant(core, [])
    _, secret = await a_key(core, tenant.id)
    for ip in ("127.0.0.1", "::1", ALLOWED):
        assert type(await refusal(core, secret, ip)) is IpNotAllowed


async def test_no_address_skips_the_whitelists(core: AuthCore) -> None:
    # An internal caller asking about a key without naming a client (validate-api-key).
    tenant = await a_tenant(core, [])
    key, secret = await a_key(core, tenant.id, allow_ips=["10.0.0.0/8"])
    assert (await authenticate(core, secret, None)).credential_id == key.id
    assert is_cached(core, secret, None)
    assert type(await refusal(core, secret, "10.0.0.1")) is IpNotAllowed


async def test_keys_need_an_existing_tenant_and_stay_in_theirs(core: AuthCore) -> None:
    with pytest.raises(NotFound):
        await a_key(core, "ten_missing")
    acme = await a_tenant(core, name="Acme")
    other = await a_tenant(core, name="Other")
    key, _ = await a_key(core, acme.id)
    assert (await core.keys.get(key.id, acme.id)).id == key.id
    assert (await core.keys.get(key.id)).id == key.id
    with pytest.raises(NotFound):
        await core.keys.get(key.id, other.id)
    with pytest.raises(NotFound):
        await core.keys.revoke(key.id, tenant_id=other.id, actor_id=None, call=CALL)
    with pytest.raises(NotFound):
        await core.keys.rotate(key.id, 0, tenant_id=other.id, actor_id=None, call=CALL)
    assert (await stored_key(core, key.id)).usable(time.time())


# -- refusals without a look-up ----------------------------------------------------------------


def _swap(secret: str) -> str:
    """Two neighbouring characters exchanged (the first pair that differs: a random key may
    repeat a character)."""
    index = next(i for i in range(4, len(secret) - 1) if secret[i] != secret[i + 1])
    return secret[:index] + secret[index + 1] + secret[index] + secret[index + 2 :]


def _typo(secret: str) -> str:
    last = secret[-1]
    return secret[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    "malform",
    [
        pytest.param(lambda secret: "", id="empty"),
        pytest.param(lambda secret: "gwk_", id="prefix-only"),
        pytest.param(_typo, id="checksum-typo"),
        pytest.param(_swap, id="swap"),
        pytest.param(lambda secret: secret[:-1], id="one-short"),
        pytest.param(lambda secret: secret + "x", id="one-long"),
        pytest.param(lambda secret: " " + secret, id="leading-space"),
        pytest.param(lambda secret: "gwp_" + secret[4:], id="pat-prefix"),
        pytest.param(lambda secret: credentials.generate(credentials.PAT_PREFIX), id="a-real-pat"),
        pytest.param(lambda secret: secret.upper(), id="upper-case"),
    ],
)
async def test_a_malformed_key_is_refused_without_the_database(
    core: AuthCore, malform: Any
) -> None:
    tenant = await a_tenant(core)
    _, secret = await a_key(core, tenant.id)
    presented = malform(secret)
    assert presented != secret
    assert core.db is not None
    await core.db.close()  # any look-up now fails with DatabaseUnavailable
    with pytest.raises(InvalidApiKey) as caught:
        core.keys.authenticate(presented, ALLOWED, CALL)  # refused at once: nothing to await
    assert (caught.value.status, caught.value.code) == (401, "invalid_api_key")
    # A well-formed key would have needed the database: the refusal above did not use it.
    unknown = credentials.generate(credentials.API_KEY_PREFIX)
    with pytest.raises(DatabaseUnavailable):
        await authenticate(core, unknown)


async def test_an_unknown_well_formed_key_is_refused_and_remembered(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    await a_key(core, tenant.id)
    unknown = credentials.generate(credentials.API_KEY_PREFIX)
    error = await refusal(core, unknown)
    assert type(error) is InvalidApiKey
    assert (error.status, error.code) == (401, "invalid_api_key")
    # Refused again from the negative cache: no second look-up.
    assert core.db is not None
    await core.db.close()
    with pytest.raises(InvalidApiKey):
        core.keys.authenticate(unknown, ALLOWED, CALL)


# -- revocation --------------------------------------------------------------------------------


async def test_a_revoked_key_is_refused_at_once_and_by_another_worker_after_sync(
    core: AuthCore,
) -> None:
    tenant = await a_tenant(core)
    key, secret = await a_key(core, tenant.id)
    _, kept = await a_key(core, tenant.id)
    async with another_worker(core) as other:
        await authenticate(other, secret)
        await authenticate(other, kept)
        await authenticate(core, secret)
        revoked = await core.keys.revoke(key.id, tenant_id=tenant.id, actor_id=None, call=CALL)
        assert revoked.id == key.id
        assert revoked.revoked_at is not None
        error = await refusal(core, secret)
        assert type(error) is InvalidApiKey
        assert "revoked" in error.detail
        # The other worker answers from its cache until it reads the revocation ...
        assert is_cached(other, secret)
        await sync(other)
        # ... and then refuses.
        assert type(await refusal(other, secret)) is InvalidApiKey
        # Other keys of the tenant keep working everywhere.
        await authenticate(other, kept)
        await authenticate(core, kept)
    # A worker started later refuses it too.
    async with another_worker(core) as later:
        assert type(await refusal(later, secret)) is InvalidApiKey
        await authenticate(later, kept)


async def test_revoking_twice_changes_nothing_the_second_time(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    key, secret = await a_key(core, tenant.id)
    first = await core.keys.revoke(key.id, tenant_id=tenant.id, actor_id=None, call=CALL)
    generation = core.revoked.generation
    second = await core.keys.revoke(key.id, tenant_id=None, actor_id=None, call=CALL)
    assert second.revoked_at == first.revoked_at
    assert core.revoked.generation == generation
    revocations = await core.store.revocations.since(0)
    assert [(r.kind, r.value) for r in revocations if r.kind == "credential"] == [
        ("credential", key.id)
    ]
    events = await core.store.audit.list(event="api_key_revoke")
    assert len(events) == 1
    assert type(await refusal(core, secret)) is InvalidApiKey


# -- rotation ----------------------------------------------------------------------------------


async def test_rotation_keeps_both_keys_during_the_grace(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    old, old_secret = await a_key(core, tenant.id, name="backend", allow_ips=["203.0.113.0/28"])
    async with another_worker(core) as other:
        await authenticate(other, old_secret)
        before = time.time()
        new, new_secret, retired = await core.keys.rotate(
            old.id, "1h", tenant_id=tenant.id, actor_id=None, call=CALL
        )
        assert new_secret != old_secret
        assert credentials.well_formed(new_secret, credentials.API_KEY_PREFIX)
        assert (new.tenant_id, new.name, new.allow_ips) == (tenant.id, "backend", old.allow_ips)
        assert new.expires_at is None
        assert (retired.id, retired.rotated_to) == (old.id, new.id)
        assert retired.expires_at is not None
        assert before + 3600 <= retired.expires_at <= time.time() + 3600
        await sync(other)
        for worker in (core, other):
            assert (await authenticate(worker, old_secret)).credential_id == old.id
            assert (await authenticate(worker, new_secret)).credential_id == new.id
            # The key's own list went over to the new key.
            assert type(await refusal(worker, new_secret, "203.0.113.20")) is IpNotAllowed
    with pytest.raises(Conflict):
        await core.keys.rotate(old.id, 0, tenant_id=tenant.id, actor_id=None, call=CALL)
    assert (await stored_key(core, old.id)).rotated_to == new.id
    listed = await core.store.api_keys.of_tenant(tenant.id)
    assert [k.id for k in listed] == [old.id, new.id]


async def test_after_the_grace_only_the_new_key_works(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    old, old_secret = await a_key(core, tenant.id)
    async with another_worker(core) as other:
        await authenticate(other, old_secret)
        await authenticate(core, old_secret)
        new, new_secret, retired = await core.keys.rotate(
            old.id, 0, tenant_id=tenant.id, actor_id=None, call=CALL
        )
        assert retired.expires_at is not None
        assert retired.expires_at <= time.time()
        error = await refusal(core, old_secret)
        assert type(error) is InvalidApiKey
        assert "expired" in error.detail
        await sync(other)
        assert type(await refusal(other, old_secret)) is InvalidApiKey
        for worker in (core, other):
            assert (await authenticate(worker, new_secret)).credential_id == new.id
    # The new key rotates in turn.
    newer, newer_secret, _ = await core.keys.rotate(
        new.id, 0, tenant_id=None, actor_id=None, call=CALL
    )
    assert type(await refusal(core, new_secret)) is InvalidApiKey
    assert (await authenticate(core, newer_secret)).credential_id == newer.id


async def test_rotation_never_lengthens_a_keys_life(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    old, _ = await a_key(core, tenant.id, expires="10m")
    assert old.expires_at is not None
    new, _, retired = await core.keys.rotate(
        old.id, "1d", tenant_id=tenant.id, actor_id=None, call=CALL
    )
    # The old key keeps its own earlier end; the new one inherits the remaining lifetime.
    assert retired.expires_at == pytest.approx(old.expires_at)
    assert new.expires_at == pytest.approx(old.expires_at)


@pytest.mark.parametrize(
    "grace",
    [
        pytest.param(-1, id="negative"),
        pytest.param("forever", id="words"),
        pytest.param("31d", id="over-30-days"),
        pytest.param(True, id="boolean"),
        pytest.param([60], id="list"),
    ],
)
async def test_a_bad_grace_is_refused_and_nothing_rotates(core: AuthCore, grace: object) -> None:
    tenant = await a_tenant(core)
    old, secret = await a_key(core, tenant.id)
    with pytest.raises(InvalidRequest):
        await core.keys.rotate(old.id, grace, tenant_id=tenant.id, actor_id=None, call=CALL)
    assert await core.store.api_keys.of_tenant(tenant.id) == [old]
    await authenticate(core, secret)


async def test_revoked_and_expired_keys_cannot_be_rotated(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    revoked, _ = await a_key(core, tenant.id)
    await core.keys.revoke(revoked.id, tenant_id=tenant.id, actor_id=None, call=CALL)
    with pytest.raises(Conflict):
        await core.keys.rotate(revoked.id, 0, tenant_id=tenant.id, actor_id=None, call=CALL)
    store = core.store
    expired = await store.api_keys.create(
        tenant.id, "h", "gwk_12345678", name=None, allow_ips=None, expires_at=time.time() - 1
    )
    with pytest.raises(Conflict):
        await core.keys.rotate(expired.id, 0, tenant_id=tenant.id, actor_id=None, call=CALL)
    assert len(await store.api_keys.of_tenant(tenant.id)) == 2


# -- whitelist changes -------------------------------------------------------------------------


async def test_a_whitelist_change_is_seen_at_once_and_by_another_worker_after_sync(
    core: AuthCore,
) -> None:
    tenant = await a_tenant(core, ["203.0.113.0/24"])
    _, secret = await a_key(core, tenant.id)
    async with another_worker(core) as other:
        await authenticate(other, secret, ALLOWED)
        assert type(await refusal(other, secret, ELSEWHERE)) is IpNotAllowed
        await core.tenants.update(tenant.id, {"ip_whitelist": ["198.51.100.0/24"]}, None, CALL)
        assert type(await refusal(core, secret, ALLOWED)) is IpNotAllowed
        await authenticate(core, secret, ELSEWHERE)
        await sync(other)
        assert type(await refusal(other, secret, ALLOWED)) is IpNotAllowed
        await authenticate(other, secret, ELSEWHERE)
        # Emptying the list shuts every address out.
        await core.tenants.update(tenant.id, {"ip_whitelist": []}, None, CALL)
        await sync(other)
        for worker in (core, other):
            assert type(await refusal(worker, secret, ELSEWHERE)) is IpNotAllowed


async def test_the_whitelist_can_be_switched_off(core: AuthCore) -> None:
    tenant = await a_tenant(core, ["203.0.113.0/24"])
    _, secret = await a_key(core, tenant.id, allow_ips=["203.0.113.0/28"])
    relaxed = AuthCore(dataclasses.replace(core.settings, ip_whitelist_enabled=False))
    await relaxed.start(follow=False)
    try:
        await authenticate(relaxed, secret, ELSEWHERE)
    finally:
        await relaxed.close()
    assert type(await refusal(core, secret, ELSEWHERE)) is IpNotAllowed


# -- expiry ------------------------------------------------------------------------------------


async def test_an_expired_key_is_refused(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    secret, digest, shown = new_credential(credentials.API_KEY_PREFIX)
    await core.store.api_keys.create(
        tenant.id, digest, shown, name=None, allow_ips=None, expires_at=time.time() - 1
    )
    error = await refusal(core, secret)
    assert type(error) is InvalidApiKey
    assert "expired" in error.detail
    await settle(core)
    [entry] = await core.store.audit.list(event="api_key")
    assert entry["detail"]["reason"] == "expired"


@pytest.mark.parametrize(
    "expires",
    [
        pytest.param(lambda now: now - 1, id="past"),
        pytest.param(lambda now: "soon", id="words"),
        pytest.param(lambda now: "-1d", id="negative-duration"),
        pytest.param(lambda now: True, id="boolean"),
    ],
)
async def test_a_key_cannot_be_created_expired(core: AuthCore, expires: Any) -> None:
    tenant = await a_tenant(core)
    with pytest.raises(InvalidRequest):
        await a_key(core, tenant.id, expires=expires(time.time()))
    assert await core.store.api_keys.of_tenant(tenant.id) == []


async def test_a_key_with_an_expiry_works_until_then(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    before = time.time()
    key, secret = await a_key(core, tenant.id, expires="30d")
    assert key.expires_at is not None
    assert before + 30 * 86400 <= key.expires_at <= time.time() + 30 * 86400
    principal = await authenticate(core, secret)
    assert principal.expires_at == key.expires_at
    at, at_secret = await a_key(core, tenant.id, expires=before + 7200)
    assert at.expires_at == before + 7200
    await authenticate(core, at_secret)


async def test_a_cached_key_stops_working_at_its_expiry(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    key, secret = await a_key(core, tenant.id, expires=time.time() + 1.0)
    await authenticate(core, secret)
    assert key.expires_at is not None
    await asyncio.sleep(max(0.0, key.expires_at - time.time()) + 0.01)
    # No event arrived: the cached grant itself knows the key's end.
    with pytest.raises(InvalidApiKey):
        core.keys.authenticate(secret, ALLOWED, CALL)


# -- last use ----------------------------------------------------------------------------------


async def test_last_use_is_written_by_flush_usage(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    key, secret = await a_key(core, tenant.id)
    unused, _ = await a_key(core, tenant.id)
    before = time.time()
    await authenticate(core, secret)
    await authenticate(core, secret)
    after = time.time()
    # Batched: nothing is written on the request's path.
    assert (await stored_key(core, key.id)).last_used_at is None
    await core.flush_usage()
    first = (await stored_key(core, key.id)).last_used_at
    assert first is not None
    assert before <= first <= after
    assert (await stored_key(core, unused.id)).last_used_at is None
    # Refusals are not uses.
    await refusal(core, secret, ELSEWHERE)
    await core.flush_usage()
    assert (await stored_key(core, key.id)).last_used_at == first
    await authenticate(core, secret)
    await core.flush_usage()
    second = (await stored_key(core, key.id)).last_used_at
    assert second is not None
    assert second >= first


async def test_last_use_is_written_when_the_core_closes(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    key, secret = await a_key(core, tenant.id)
    before = time.time()
    async with another_worker(core) as other:
        await authenticate(other, secret)
    # `other` closed without anyone flushing.
    used = (await stored_key(core, key.id)).last_used_at
    assert used is not None
    assert before <= used <= time.time()


async def test_a_failed_flush_keeps_the_uses_for_the_next(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    key, secret = await a_key(core, tenant.id)
    async with another_worker(core) as other:
        await authenticate(other, secret)
        assert other.db is not None
        database = other.db
        await database.close()
        await other.flush_usage()  # the database is away: kept, not lost, not raised
        await database.connect()
        await other.flush_usage()
        assert (await stored_key(core, key.id)).last_used_at is not None


async def test_concurrent_rotations_of_one_key_let_exactly_one_win(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    old, old_secret = await a_key(core, tenant.id)
    async with another_worker(core) as other:
        results = await asyncio.gather(
            *(
                worker.keys.rotate(old.id, "1h", tenant_id=tenant.id, actor_id=None, call=CALL)
                for worker in (core, other, core, other)
            ),
            return_exceptions=True,
        )
    won = [r for r in results if isinstance(r, tuple)]
    lost = [r for r in results if not isinstance(r, tuple)]
    assert len(won) == 1, results
    assert all(isinstance(r, Conflict) for r in lost), lost
    new, new_secret, retired = won[0]
    keys = await core.store.api_keys.of_tenant(tenant.id)
    # The losers' successors were rolled back with their transactions.
    assert sorted(k.id for k in keys) == sorted([old.id, new.id])
    assert (await stored_key(core, old.id)).rotated_to == new.id == retired.rotated_to
    await authenticate(core, old_secret)
    await authenticate(core, new_secret)


async def test_concurrent_misses_on_one_key_read_the_database_once(core: AuthCore) -> None:
    tenant = await a_tenant(core)
    _, secret = await a_key(core, tenant.id)
    # A fresh worker: nothing cached. Twenty requests with the key arrive together.
    async with another_worker(core) as worker:
        tenant_reads = worker.stats.lookups[TENANT_MISS]
        found = await asyncio.gather(*(authenticate(worker, secret) for _ in range(20)))
        assert {principal.tenant_id for principal in found} == {tenant.id}
        # One fetch of the key (which reads its tenant once), not twenty.
        assert worker.stats.lookups[TENANT_MISS] - tenant_reads == 1
        assert is_cached(worker, secret)
