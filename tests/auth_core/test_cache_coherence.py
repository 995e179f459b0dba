"""Caches that stay true to revocations across workers: the revocation set as a worker that
revokes itself sees it, the single flight of key look-ups across a revocation, the follower
that reads the table, the shared (Redis) tier's epoch rule and the stale window.

Two AuthCores on one database stand for two workers (or replicas); nothing is mocked, the
databases and Redis are real, and no test times anything (waits are bounded)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from auth_core import credentials
from auth_core.errors import AuthUnavailable, GatewayError, InvalidApiKey, TokenRevoked
from auth_core.models import Principal
from auth_core.revocation import SESSION
from auth_core.service import AuthCore, CallInfo
from auth_core.store import DatabaseUnavailable
from tests import support
from tests.auth_core.helpers import PASSWORD, settle, sync
from tests.conftest import REDIS_URL
from tests.support import TcpRelay, eventually

CALL = CallInfo(ip="203.0.113.10", request_id="req-caches")
HERE = "203.0.113.10"


@asynccontextmanager
async def workers(
    tmp_path: Path,
    database_url: str,
    count: int = 2,
    *,
    follow: tuple[bool, ...] = (),
    **options: Any,
) -> AsyncIterator[list[AuthCore]]:
    """`count` auth cores on one database (one configuration: the same secrets); they read
    the table only when told to, except those `follow` names."""
    settings = support.auth_settings(tmp_path, database_url=database_url, **options)
    cores = [AuthCore(settings) for _ in range(count)]
    started: list[AuthCore] = []
    try:
        for index, core in enumerate(cores):
            await core.start(follow=index < len(follow) and follow[index])
            started.append(core)
        yield cores
    finally:
        for core in started:
            await close_quietly(core)


async def close_quietly(core: AuthCore) -> None:
    """Close a core even if its follower died with an exception (close() re-raises it)."""
    try:
        await core.close()
    except Exception:
        if core.redis is not None:
            await core.redis.close()
        if core.db is not None:
            await core.db.close()
            core.db = None


async def authenticate(core: AuthCore, secret: str, ip: str | None = HERE) -> Principal:
    found = core.keys.authenticate(secret, ip, CALL)
    return found if isinstance(found, Principal) else await found


def refused(core: AuthCore, token: str) -> bool:
    try:
        core.authenticate_access_token(token)
    except TokenRevoked:
        return True
    return False


# -- a worker's own revocations and what it has not read yet ------------------------------------


async def test_a_worker_that_revokes_still_reads_what_another_revoked_just_before(
    tmp_path: Path, database_url: str
) -> None:
    """Worker A logs a session out (row n); worker B, before its next read of the table, ends
    another session (row n+1, applied at once). B's next read must still bring row n."""
    async with workers(tmp_path, database_url) as (first, second):
        await first.accounts.create("ada@example.com", PASSWORD, verified=True)
        await first.accounts.create("bob@example.com", PASSWORD, verified=True)
        ada = await first.sessions.login("ada@example.com", PASSWORD, CALL)
        bob = await second.sessions.login("bob@example.com", PASSWORD, CALL)
        await sync(second)
        assert second.authenticate_access_token(ada.access_token).user_id == ada.user.id

        await first.sessions.revoke_session(ada.session.id, "logout")  # row n, on worker A
        await second.sessions.revoke_session(bob.session.id, "logout")  # row n+1, on B
        await sync(second)
        await sync(second)
        assert refused(second, bob.access_token)
        # Ada's logout on worker A must be refused by worker B too.
        assert refused(second, ada.access_token), "B never read the revocation of row n"


async def test_settled_id_never_claims_a_revocation_that_was_not_read(
    tmp_path: Path, database_url: str
) -> None:
    """settled_id promises that every id up to it is known here; a worker's own revocation
    must not make it jump over one written elsewhere that it has not read."""
    async with workers(tmp_path, database_url) as (first, second):
        await sync(second)
        await first.revoke(SESSION, "ses_elsewhere")
        (elsewhere,) = await first.store.revocations.since(second.revoked.last_id)
        await second.revoke(SESSION, "ses_here")
        assert "ses_elsewhere" not in second.revoked.sessions
        assert second.revoked.settled_id < elsewhere.id


# -- the single flight of keys._load ------------------------------------------------------------


async def _backend_pid_waiting_on(connection: asyncpg.Connection, table: str) -> int | None:
    # Inside a transaction the activity view is a snapshot taken once: take a new one.
    await connection.execute("SELECT pg_stat_clear_snapshot()")
    return await connection.fetchval(  # type: ignore[no-any-return]
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query ILIKE $1 LIMIT 1",
        f"%FROM {table}%",
    )


async def _until_blocked(connection: asyncpg.Connection, table: str) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (pid := await _backend_pid_waiting_on(connection, table)) is None:
        assert loop.time() < deadline, f"nothing ever waited on {table}"
        await asyncio.sleep(0.01)
    return pid


async def test_a_request_after_a_revocation_does_not_join_a_read_made_before_it(
    tmp_path: Path, postgres_url: str
) -> None:
    """A look-up of a key starts (and reads the key, still live); then this worker learns that
    the key was revoked; a request with the key that arrives now must not be admitted on the
    look-up that began before the revocation. (PostgreSQL: a table lock held by the test keeps
    the first look-up between its two reads.)"""
    async with workers(tmp_path, postgres_url) as (worker, admin):
        tenant = await admin.tenants.create("Acme", [], ["203.0.113.0/24"], None, CALL)
        key, secret = await admin.keys.create(tenant.id, actor_id=None, call=CALL)
        await sync(worker)
        locker = await asyncpg.connect(postgres_url)
        try:
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
            before = asyncio.ensure_future(authenticate(worker, secret))
            # The look-up has read the key and now waits for its tenant.
            await _until_blocked(locker, "tenants")
            await admin.keys.revoke(key.id, tenant_id=None, actor_id=None, call=CALL)
            await sync(worker)  # this worker now knows of the revocation
            after = asyncio.ensure_future(authenticate(worker, secret))
            await asyncio.sleep(0)  # `after` is now waiting for the look-up in flight
            await transaction.commit()
            outcomes = await asyncio.gather(before, after, return_exceptions=True)
        finally:
            await locker.close()
        # The request that came before the revocation may pass; the one after must not.
        assert isinstance(outcomes[1], InvalidApiKey), (
            f"a request made after the revocation was known got {outcomes[1]!r}"
        )
        # The next one is refused in any case (the grant carries the old generation).
        with pytest.raises(InvalidApiKey):
            await authenticate(worker, secret)


async def test_when_the_look_up_fails_every_waiter_gets_the_error_and_the_next_one_retries(
    tmp_path: Path, postgres_url: str
) -> None:
    relay = TcpRelay("127.0.0.1", 5432)
    await relay.start()
    through = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}", 1)
    try:
        async with workers(tmp_path, through) as (worker, admin):
            tenant = await admin.tenants.create("Acme", [], ["203.0.113.0/24"], None, CALL)
            _, secret = await admin.keys.create(tenant.id, actor_id=None, call=CALL)
            await sync(worker)
            await relay.cut()
            outcomes = await asyncio.gather(
                *(authenticate(worker, secret) for _ in range(10)), return_exceptions=True
            )
            assert all(
                isinstance(outcome, DatabaseUnavailable | AuthUnavailable) for outcome in outcomes
            ), outcomes
            await asyncio.sleep(0)  # the done callback of the failed look-up
            assert worker.keys._loading == {}  # nothing left behind to join
            await relay.restore()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while True:
                try:
                    principal = await authenticate(worker, secret)
                    break
                except (DatabaseUnavailable, AuthUnavailable):
                    assert loop.time() < deadline, "the database never came back"
                    await asyncio.sleep(0.05)
            assert principal.tenant_id == tenant.id
    finally:
        await relay.close()


# -- the follower ---------------------------------------------------------------------------------


async def test_the_follower_survives_a_cancelled_read_of_the_table(
    tmp_path: Path, postgres_url: str
) -> None:
    """A query of the follower cancelled by the server (statement_timeout, an operator's
    pg_cancel_backend) is not a lost connection, but it must not end the following: the
    worker would never learn of a revocation again."""
    async with workers(tmp_path, postgres_url, follow=(True, False)) as (worker, admin):
        await admin.accounts.create("ada@example.com", PASSWORD, verified=True)
        ada = await admin.sessions.login("ada@example.com", PASSWORD, CALL)
        locker = await asyncpg.connect(postgres_url)
        try:
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE revocations IN ACCESS EXCLUSIVE MODE")
            # The follower's next read waits on the lock; the server cancels it.
            pid = await _until_blocked(locker, "revocations")
            assert await locker.fetchval("SELECT pg_cancel_backend($1)", pid)
            await transaction.commit()
        finally:
            await locker.close()
        await admin.sessions.revoke_session(ada.session.id, "logout")
        follower = worker._tasks[0]
        try:
            await eventually(lambda: refused(worker, ada.access_token), "the logout arrived")
        except AssertionError:
            died = follower.exception() if follower.done() else None
            message = f"the worker never read the logout; its follower: {died!r}"
            raise AssertionError(message) from None


async def test_a_redis_that_stops_answering_is_noticed_by_the_subscription(
    tmp_path: Path,
) -> None:
    """Redis frozen (a hung server, a partition that drops packets: the TCP connection is not
    closed). The subscription then hears nothing, but the worker must notice that Redis is
    away and read the table at the polling interval (docs/authentication.md: "while Redis is away,
    every
    worker reads the table every 50 ms"), not at the 2 s safety interval of a live push."""
    with support.redis_server(tmp_path) as server:
        database_url = f"sqlite:///{tmp_path}/gateway.db"
        async with workers(tmp_path, database_url, 1, follow=(True,), redis_url=server.url) as (
            worker,
        ):
            await eventually(lambda: worker.feed.subscribed, "subscribed")
            assert server.process is not None
            server.process.send_signal(signal.SIGSTOP)
            try:
                await eventually(
                    lambda: worker.feed.interval == worker.feed.poll_interval,
                    "the worker fell back to polling",
                )
            finally:
                server.process.send_signal(signal.SIGCONT)


# -- the shared tier ------------------------------------------------------------------------------


async def test_an_entry_put_after_a_revocation_with_an_older_epoch_is_not_taken(
    tmp_path: Path, database_url: str, redis_prefix: str
) -> None:
    """The writer read the database before the revocation, its put lands in Redis after it:
    a worker that knows the revocation reads the database instead (edge case)."""
    async with workers(
        tmp_path, database_url, 3, redis_url=REDIS_URL, redis_prefix=redis_prefix
    ) as (writer, revoker, reader):
        tenant = await revoker.tenants.create("Acme", [], ["203.0.113.0/24"], None, CALL)
        key, secret = await revoker.keys.create(tenant.id, actor_id=None, call=CALL)
        for core in (writer, reader):
            await sync(core)
        digest = credentials.credential_hash(secret)
        epoch = writer.shared.epoch()
        row = await writer.store.api_keys.by_hash(digest)
        assert row is not None
        await revoker.keys.revoke(key.id, tenant_id=None, actor_id=None, call=CALL)
        await writer.shared.put("key", digest, row.row(), epoch)  # late, stale
        await sync(reader)
        assert await reader.shared.get("key", digest) is None
        with pytest.raises(InvalidApiKey):
            await authenticate(reader, secret)


async def test_a_revocation_row_outlives_every_cache_entry_it_voids(
    tmp_path: Path, database_url: str, redis_prefix: str
) -> None:
    """An entry of the shared tier lives GATEWAY_AUTH_CACHE_TTL (and may be served for the
    stale window past it). The revocation row that voids it must outlive both, or a worker
    starting once the row is gone would know nothing newer than the entry's epoch and take the
    revoked key from Redis. Here the cache TTL (10 min) is far longer than the access token's
    (1 min)."""
    options: dict[str, Any] = {
        "redis_url": REDIS_URL,
        "redis_prefix": redis_prefix,
        "access_ttl": 60.0,
        "cache_ttl": 600.0,
        "stale_window": 300.0,
    }
    async with workers(tmp_path, database_url, **options) as (first, second):
        tenant = await first.tenants.create("Acme", [], ["203.0.113.0/24"], None, CALL)
        key, secret = await first.keys.create(tenant.id, actor_id=None, call=CALL)
        await sync(second)
        await authenticate(second, secret)
        await settle(second)  # the key and its tenant are in Redis now, for ten minutes
        revoked_at = time.time()
        await first.keys.revoke(key.id, tenant_id=None, actor_id=None, call=CALL)
        rows = await first.store.revocations.since(0)
        credential_rows = [row for row in rows if row.value == key.id]
        assert credential_rows
        assert all(row.expires_at >= revoked_at + 600.0 + 300.0 for row in credential_rows)
        async with workers(tmp_path, database_url, 1, **options) as (late,):
            with pytest.raises(InvalidApiKey):
                await authenticate(late, secret)


# -- the stale window -----------------------------------------------------------------------------


async def test_no_stale_answer_once_the_generation_changed(
    tmp_path: Path, postgres_url: str, postgres_relay: tuple[TcpRelay, str]
) -> None:
    """Past its lifetime, with the database gone, a cached key is served stale only while no
    cache-voiding revocation arrived since it was read (edge case)."""
    cut, through = postgres_relay
    settings = support.auth_settings(
        tmp_path, database_url=through, cache_ttl=0.0, stale_window=600.0
    )
    admin_settings = support.auth_settings(tmp_path, database_url=postgres_url)
    worker, admin = AuthCore(settings), AuthCore(admin_settings)
    await worker.start(follow=False)
    await admin.start(follow=False)
    try:
        tenant = await admin.tenants.create("Acme", [], ["203.0.113.0/24"], None, CALL)
        other = await admin.tenants.create("Other", [], [], None, CALL)
        _, secret = await admin.keys.create(tenant.id, actor_id=None, call=CALL)
        await sync(worker)
        await authenticate(worker, secret)
        await cut.cut()
        # Past its lifetime (0 s), the database unreachable: served stale.
        assert (await authenticate(worker, secret)).tenant_id == tenant.id
        assert worker.stats.stale_served >= 1
        await cut.restore()
        await admin.tenants.update(other.id, {"name": "Renamed"}, None, CALL)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            try:
                await sync(worker)  # a tenant revocation: the generation moves on
                break
            except DatabaseUnavailable:
                assert loop.time() < deadline, "the database never came back"
                await asyncio.sleep(0.05)
        await cut.cut()
        with pytest.raises((DatabaseUnavailable, AuthUnavailable)):
            await authenticate(worker, secret)
    finally:
        await close_quietly(worker)
        await close_quietly(admin)


async def test_no_stale_answer_after_a_revocation_was_announced_but_could_not_be_read(
    tmp_path: Path, postgres_url: str, postgres_relay: tuple[TcpRelay, str], redis_prefix: str
) -> None:
    """The worker's database is unreachable; another replica revokes the key and announces the
    new row's id through Redis; this worker hears it (so it knows a revocation it cannot read
    exists) and must stop serving the key from its stale cache: docs/authentication.md, "never after
    a
    revocation event voided it"."""
    cut, through = postgres_relay
    shared = {"redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    worker = AuthCore(
        support.auth_settings(
            tmp_path, database_url=through, cache_ttl=0.0, stale_window=600.0, **shared
        )
    )
    admin = AuthCore(support.auth_settings(tmp_path, database_url=postgres_url, **shared))
    await worker.start()
    await admin.start(follow=False)
    try:
        tenant = await admin.tenants.create("Acme", [], ["203.0.113.0/24"], None, CALL)
        key, secret = await admin.keys.create(tenant.id, actor_id=None, call=CALL)
        await eventually(lambda: worker.feed.subscribed, "subscribed")
        await sync(worker)
        await authenticate(worker, secret)
        await settle(worker)
        await cut.cut()
        assert (await authenticate(worker, secret)).tenant_id == tenant.id  # stale, fine
        heard = worker.feed.received
        await admin.keys.revoke(key.id, tenant_id=None, actor_id=None, call=CALL)
        await eventually(lambda: worker.feed.received > heard, "the announcement arrived")
        with pytest.raises((GatewayError, DatabaseUnavailable)):
            await authenticate(worker, secret)
    finally:
        with suppress(Exception):
            await cut.restore()
        await close_quietly(worker)
        await close_quietly(admin)
