"""Service tokens through the AuthCore facade, on both backends: the principal they prove,
refusals without a database look-up, the negative cache, revocation as this worker and another
one see it, the shared (Redis) tier, the stale window, `last_used_at` and the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from auth_core import credentials
from auth_core.errors import Conflict, InvalidRequest, InvalidToken, NotFound
from auth_core.models import Principal
from auth_core.service import AuthCore, CallInfo
from auth_core.stats import CREDENTIAL_SHARED_HIT
from auth_core.store import DatabaseUnavailable
from tests.auth_core.helpers import settle, sync
from tests.auth_core.test_cache_coherence import workers
from tests.conftest import REDIS_URL

CALL = CallInfo(ip="203.0.113.10", user_agent="billing/1.0", request_id="req-s")


async def authenticate(core: AuthCore, secret: str) -> Principal:
    found = core.service_tokens.authenticate(secret, CALL)
    return found if isinstance(found, Principal) else await found


def is_cached(core: AuthCore, secret: str) -> bool:
    return isinstance(core.service_tokens.authenticate(secret, CALL), Principal)


async def test_a_token_proves_its_service_and_no_user(core: AuthCore) -> None:
    token, secret = await core.service_tokens.create("billing", actor_id="usr_1", call=CALL)
    assert secret.startswith("gws_")
    assert len(secret) == 42
    principal = await authenticate(core, secret)
    assert (principal.method, principal.credential_id) == ("service", token.id)
    assert (principal.user_id, principal.roles, principal.tenant_id) == (None, (), None)
    assert is_cached(core, secret)
    stored = await core.store.db.fetchrow(
        "SELECT token_hash, prefix FROM service_tokens WHERE id = $1", token.id
    )
    assert stored is not None
    assert dict(stored) == {
        "token_hash": credentials.credential_hash(secret),
        "prefix": secret[:12],
    }
    [entry] = await core.store.audit.list(event="service_token_create")
    assert (entry["actor_id"], entry["detail"]["name"]) == ("usr_1", "billing")


@pytest.mark.parametrize("name", ["", " billing", "billing ", "a/b", "x" * 65, "é", None, 3])
async def test_a_bad_name_is_refused(core: AuthCore, name: object) -> None:
    with pytest.raises(InvalidRequest):
        await core.service_tokens.create(name, actor_id=None, call=CALL)
    assert await core.service_tokens.list() == []


async def test_names_are_unique_among_live_tokens(core: AuthCore) -> None:
    first, _ = await core.service_tokens.create("billing", actor_id=None, call=CALL)
    with pytest.raises(Conflict):
        await core.service_tokens.create("billing", actor_id=None, call=CALL)
    await core.service_tokens.revoke(first.id, actor_id=None, call=CALL)
    second, _ = await core.service_tokens.create("billing", actor_id=None, call=CALL)
    assert [(token.id, token.revoked_at is None) for token in await core.service_tokens.list()] == [
        (first.id, False),
        (second.id, True),
    ]


async def test_a_malformed_token_is_refused_without_the_database(core: AuthCore) -> None:
    _, secret = await core.service_tokens.create("billing", actor_id=None, call=CALL)
    assert core.db is not None
    await core.db.close()  # any look-up now fails with DatabaseUnavailable
    for presented in (
        secret[:-1] + ("A" if secret[-1] != "A" else "B"),
        secret[:-1],
        "gwk_" + secret[4:],
        "w" * 48,
    ):
        with pytest.raises(InvalidToken) as caught:
            core.service_tokens.authenticate(presented, CALL)  # nothing to await
        assert (caught.value.status, caught.value.code) == (401, "invalid_token")
    with pytest.raises(DatabaseUnavailable):
        await authenticate(core, credentials.generate(credentials.SERVICE_TOKEN_PREFIX))


async def test_an_unknown_token_is_refused_and_remembered(core: AuthCore) -> None:
    unknown = credentials.generate(credentials.SERVICE_TOKEN_PREFIX)
    with pytest.raises(InvalidToken):
        await authenticate(core, unknown)
    assert core.db is not None
    await core.db.close()
    with pytest.raises(InvalidToken):
        core.service_tokens.authenticate(unknown, CALL)  # from the negative cache


async def test_a_revoked_token_is_refused_at_once_and_by_another_worker_after_sync(
    tmp_path: Path, database_url: str
) -> None:
    async with workers(tmp_path, database_url) as (first, second):
        token, secret = await first.service_tokens.create("billing", actor_id=None, call=CALL)
        _, kept = await first.service_tokens.create("reports", actor_id=None, call=CALL)
        for core in (first, second):
            await authenticate(core, secret)
            await authenticate(core, kept)
        revoked = await first.service_tokens.revoke(token.id, actor_id="cli", call=CALL)
        assert revoked.revoked_at is not None
        with pytest.raises(InvalidToken, match="revoked"):
            await authenticate(first, secret)
        assert is_cached(second, secret)  # until it reads the revocation ...
        await sync(second)
        with pytest.raises(InvalidToken, match="revoked"):
            await authenticate(second, secret)  # ... and then refuses
        await authenticate(second, kept)
        # Revoking again changes nothing; an unknown id is NotFound.
        again = await first.service_tokens.revoke(token.id, actor_id="cli", call=CALL)
        assert again.revoked_at == revoked.revoked_at
        with pytest.raises(NotFound):
            await first.service_tokens.revoke("svc_0", actor_id="cli", call=CALL)
        await settle(first)
        await settle(second)
        assert len(await first.store.audit.list(event="service_token_revoke")) == 1
        refusals = await first.store.audit.list(event="service_token")
        assert len(refusals) == 2  # one a worker
        for refusal in refusals:
            assert (refusal["outcome"], refusal["ip"], refusal["request_id"]) == (
                "refused",
                "203.0.113.10",
                "req-s",
            )
            assert refusal["detail"] == {
                "reason": "revoked",
                "service_token_id": token.id,
                "name": "billing",
            }
    async with workers(tmp_path, database_url, 1) as (later,):
        with pytest.raises(InvalidToken):
            await authenticate(later, secret)


async def test_the_shared_tier_serves_other_workers_until_a_revocation(
    tmp_path: Path, database_url: str, redis_prefix: str
) -> None:
    async with workers(
        tmp_path, database_url, 3, redis_url=REDIS_URL, redis_prefix=redis_prefix
    ) as (first, second, third):
        token, secret = await first.service_tokens.create("billing", actor_id=None, call=CALL)
        await authenticate(first, secret)
        await settle(first)  # its read is in Redis now
        hits = second.stats.lookups[CREDENTIAL_SHARED_HIT]
        await authenticate(second, secret)
        assert second.stats.lookups[CREDENTIAL_SHARED_HIT] == hits + 1
        await first.service_tokens.revoke(token.id, actor_id=None, call=CALL)
        await sync(third)
        hits = third.stats.lookups[CREDENTIAL_SHARED_HIT]
        with pytest.raises(InvalidToken):
            await authenticate(third, secret)
        assert third.stats.lookups[CREDENTIAL_SHARED_HIT] == hits  # not from Redis


@pytest.mark.parametrize(("stale_window", "served"), [(600.0, True), (0.0, False)])
async def test_the_stale_window_covers_a_database_outage(
    tmp_path: Path, database_url: str, stale_window: float, served: bool
) -> None:
    async with workers(tmp_path, database_url, 1, cache_ttl=0.0, stale_window=stale_window) as (
        core,
    ):
        _, secret = await core.service_tokens.create("billing", actor_id=None, call=CALL)
        await authenticate(core, secret)
        assert core.db is not None
        await core.db.close()
        if served:
            assert (await authenticate(core, secret)).method == "service"
            assert core.stats.stale_served == 1
        else:
            with pytest.raises(DatabaseUnavailable):
                await authenticate(core, secret)


async def test_last_use_is_written_by_flush_usage(core: AuthCore) -> None:
    token, secret = await core.service_tokens.create("billing", actor_id=None, call=CALL)
    assert token.last_used_at is None
    await authenticate(core, secret)
    await authenticate(core, secret)
    await core.flush_usage()
    [listed] = await core.service_tokens.list()
    assert listed.last_used_at is not None
    assert listed.last_used_at >= token.created_at
