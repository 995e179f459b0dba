"""The shared (Redis) tier of the credential cache: what one worker read from the database,
another takes from Redis; nothing revoked after the read is taken from it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from auth_core.errors import InvalidApiKey, IpNotAllowed
from auth_core.models import ApiKey, Principal, Tenant
from auth_core.service import AuthCore, CallInfo
from auth_core.stats import CREDENTIAL_SHARED_HIT, TENANT_SHARED_HIT
from tests.auth_core.helpers import settle, sync, two_cores
from tests.conftest import REDIS_URL

CALL = CallInfo()
HERE = "127.0.0.1"


@pytest.fixture
async def workers(
    tmp_path: Path, database_url: str, redis_prefix: str
) -> AsyncIterator[tuple[AuthCore, AuthCore]]:
    """Two workers on one database, sharing one Redis."""
    async with two_cores(
        tmp_path, database_url, redis_url=REDIS_URL, redis_prefix=redis_prefix
    ) as pair:
        yield pair


async def authenticate(core: AuthCore, key: str, ip: str = HERE) -> Principal:
    found = core.keys.authenticate(key, ip, CALL)
    return found if isinstance(found, Principal) else await found


async def a_key(first: AuthCore, second: AuthCore) -> tuple[Tenant, ApiKey, str]:
    """A tenant (whitelisting loopback) and a key of it, made on the first worker; the second
    has read the revocation table since, as its follower would."""
    tenant = await first.tenants.create("Acme", [], ["127.0.0.0/8"], None, CALL)
    record, key = await first.keys.create(tenant.id, actor_id=None, call=CALL)
    await sync(second)
    return tenant, record, key


async def test_a_key_read_by_one_worker_is_found_in_redis_by_another(
    workers: tuple[AuthCore, AuthCore],
) -> None:
    first, second = workers
    tenant, _, key = await a_key(first, second)
    assert (await authenticate(first, key)).tenant_id == tenant.id
    await settle(first)
    principal = await authenticate(second, key)
    assert principal.tenant_id == tenant.id
    assert second.stats.lookups[CREDENTIAL_SHARED_HIT] == 1
    assert second.stats.lookups[TENANT_SHARED_HIT] == 1
    # The tenant's whitelist, read from Redis, still decides.
    with pytest.raises(IpNotAllowed):
        await authenticate(second, key, "192.0.2.1")


async def test_nothing_revoked_after_the_read_comes_from_redis(
    workers: tuple[AuthCore, AuthCore],
) -> None:
    first, second = workers
    _, key_record, key = await a_key(first, second)
    await authenticate(first, key)
    await settle(first)
    # Revoked through the second worker: the first one's entry in Redis predates it.
    await second.keys.revoke(key_record.id, tenant_id=None, actor_id=None, call=CALL)
    await sync(first)
    shared_hits = first.stats.lookups[CREDENTIAL_SHARED_HIT]
    with pytest.raises(InvalidApiKey):
        await authenticate(first, key)
    assert first.stats.lookups[CREDENTIAL_SHARED_HIT] == shared_hits
    # A third core starting now knows the revocation too, and does not take the entry.
    third = AuthCore(first.settings)
    await third.start()
    try:
        with pytest.raises(InvalidApiKey):
            await authenticate(third, key)
    finally:
        await third.close()


async def test_a_pat_comes_from_redis_with_its_users_roles_until_they_change(
    workers: tuple[AuthCore, AuthCore],
) -> None:
    first, second = workers
    user = await first.accounts.create("ada@example.com", None, verified=True)
    _, token = await first.pats.create(user.id, {"name": "ci"}, CALL)

    async def principal(core: AuthCore) -> Principal:
        found = core.pats.authenticate(token, CALL)
        return found if isinstance(found, Principal) else await found

    assert (await principal(first)).roles == ("user",)
    await settle(first)
    assert (await principal(second)).roles == ("user",)
    assert second.stats.lookups[CREDENTIAL_SHARED_HIT] == 1
    # New roles (a user revocation): the entry in Redis predates them, so neither takes it.
    await second.accounts.update(user.id, {"roles": ["user", "ops"]}, None, CALL)
    await sync(first)
    assert (await principal(first)).roles == ("user", "ops")
    assert first.stats.lookups[CREDENTIAL_SHARED_HIT] == 0
    # The first one's new read, made after the revocation, is one the second may take
    # (waited for: whether it is in Redis yet is otherwise a race with the second's read).
    await settle(first)
    assert (await principal(second)).roles == ("user", "ops")
    assert second.stats.lookups[CREDENTIAL_SHARED_HIT] == 2
