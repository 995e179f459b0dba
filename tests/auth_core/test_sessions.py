"""Sessions through the AuthCore facade, on both backends: login, rotation, reuse detection,
logout and revocation (also as another worker sees it), lockout and throttling, re-hashing of
imported passwords, status and extend, e-mail verification and password reset by mail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from auth_core.errors import (
    GatewayError,
    InvalidCredentials,
    InvalidRequest,
    InvalidToken,
    NotFound,
    RateLimited,
    TokenExpired,
    TokenRevoked,
)
from auth_core.models import Principal, User
from auth_core.service import AuthCore, CallInfo
from auth_core.sessions import ADDRESS_LIMIT, REFRESH_PREFIX, TokenPair
from auth_core.tokens import AccessTokens, Keyring, token_hash
from tests import support
from tests.auth_core.foreign_hashes import bcrypt_hash, django_pbkdf2, passlib_pbkdf2
from tests.auth_core.helpers import PASSWORD, mailed_token, outbox, refused, settle

EMAIL = "ada@example.com"
CALL = CallInfo(ip="203.0.113.10", user_agent="pytest/1.0", request_id="req-1")
BASE_URL = "https://gw.example"
NEW_PASSWORD = "a new and better passphrase"


async def a_user(core: AuthCore, email: str = EMAIL, password: str = PASSWORD) -> User:
    return await core.accounts.create(email, password, verified=True)


async def login(core: AuthCore, email: str = EMAIL, password: str = PASSWORD) -> TokenPair:
    return await core.sessions.login(email, password, CALL)


async def assert_refresh_refused(core: AuthCore, refresh_token: str) -> None:
    with pytest.raises(InvalidToken):
        await core.sessions.refresh(refresh_token, CALL)


# -- login ----------------------------------------------------------------------------------


async def test_login_returns_a_working_pair(core: AuthCore) -> None:
    user = await a_user(core)
    pair = await login(core, "ADA@Example.com")
    principal = core.authenticate_access_token(pair.access_token)
    assert principal.method == "jwt"
    assert principal.user_id == user.id
    assert principal.session_id == pair.session.id
    assert principal.email == EMAIL
    assert principal.roles == ("user",)
    assert principal.expires_at == pytest.approx(principal.issued_at + 900, abs=0.01)
    assert pair.refresh_token.startswith(REFRESH_PREFIX)
    assert pair.expires_in == 900
    body = pair.body()
    assert body["token_type"] == "Bearer"
    assert body["user"]["id"] == user.id
    assert "password_hash" not in body["user"]
    store = core.store
    session = await store.sessions.get(pair.session.id)
    assert session is not None
    assert (session.user_id, session.ip, session.user_agent) == (user.id, CALL.ip, "pytest/1.0")
    # Only the refresh token's hash is stored.
    rows = await store.db.fetch("SELECT token_hash FROM refresh_tokens")
    assert [row["token_hash"] for row in rows] == [token_hash(pair.refresh_token)]
    entries = await store.audit.list(event="login")
    assert [(e["outcome"], e["user_id"], e["request_id"]) for e in entries] == [
        ("success", user.id, "req-1")
    ]


@pytest.mark.parametrize(
    ("token", "error"),
    [
        pytest.param(lambda core: "", InvalidToken, id="empty"),
        pytest.param(lambda core: "not.a.jwt", InvalidToken, id="garbage"),
        pytest.param(
            lambda core: AccessTokens(
                Keyring.parse(f"t1:{'x' * 40}"), issuer="gateway", audience="gateway", ttl=60
            ).issue(subject="usr_1", session_id="s", roles=(), tenant_id=None, email=None)[0],
            InvalidToken,
            id="another-secret-same-kid",
        ),
        pytest.param(
            lambda core: core.tokens.issue(
                subject="usr_1",
                session_id="s",
                roles=(),
                tenant_id=None,
                email=None,
                now=time.time() - 3600,
            )[0],
            TokenExpired,
            id="expired",
        ),
    ],
)
async def test_authenticate_access_token_refusals(
    core: AuthCore, token: Callable[[AuthCore], str], error: type[GatewayError]
) -> None:
    assert refused(core, token(core)) is error


# -- refresh --------------------------------------------------------------------------------


async def test_refresh_rotates(core: AuthCore) -> None:
    user = await a_user(core)
    first = await login(core)
    store = core.store
    second = await core.sessions.refresh(first.refresh_token, CALL)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert second.session.id == first.session.id
    assert second.session.refreshed_at is not None
    assert second.user.id == user.id
    spent = await store.db.fetchval(
        "SELECT used_at FROM refresh_tokens WHERE token_hash = $1", token_hash(first.refresh_token)
    )
    assert spent is not None
    principal = core.authenticate_access_token(second.access_token)
    assert (principal.user_id, principal.session_id) == (user.id, first.session.id)
    # The chain goes on: each new refresh token rotates once more.
    third = await core.sessions.refresh(second.refresh_token, CALL)
    assert refused(core, third.access_token) is None


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("gwr_" + "x" * 43, id="unknown"),
        pytest.param("no-prefix-" + "x" * 40, id="no-prefix"),
        pytest.param("gwr_" + "x" * 200, id="too-long"),
    ],
)
async def test_refresh_refuses_unknown_tokens(core: AuthCore, token: str) -> None:
    await a_user(core)
    pair = await login(core)
    await assert_refresh_refused(core, token)
    # A stranger's token says nothing about this session: it goes on.
    assert refused(core, pair.access_token) is None


async def test_reusing_a_spent_refresh_token_revokes_the_whole_session(core: AuthCore) -> None:
    await a_user(core)
    first = await login(core)
    other = await login(core)  # another session of the same user
    second = await core.sessions.refresh(first.refresh_token, CALL)
    with pytest.raises(InvalidToken, match="already used"):
        await core.sessions.refresh(first.refresh_token, CALL)
    assert refused(core, first.access_token) is TokenRevoked
    assert refused(core, second.access_token) is TokenRevoked
    await assert_refresh_refused(core, second.refresh_token)
    session = await core.store.sessions.get(first.session.id)
    assert session is not None
    assert session.revoked_at is not None
    # The user's other session is not touched.
    assert refused(core, other.access_token) is None
    await core.sessions.refresh(other.refresh_token, CALL)
    outcomes = [e["outcome"] for e in await core.store.audit.list(event="refresh")]
    assert "reuse_detected" in outcomes


async def test_concurrent_refreshes_with_one_token_let_at_most_one_succeed(
    core: AuthCore,
) -> None:
    await a_user(core)
    pair = await login(core)
    results = await asyncio.gather(
        *(core.sessions.refresh(pair.refresh_token, CALL) for _ in range(2)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, TokenPair)]
    losers = [r for r in results if not isinstance(r, TokenPair)]
    assert len(winners) <= 1
    assert losers
    assert all(isinstance(r, InvalidToken) for r in losers), losers
    # The second presentation is a reuse: the session is revoked, whoever won.
    for winner in winners:
        assert refused(core, winner.access_token) is TokenRevoked
        await assert_refresh_refused(core, winner.refresh_token)


async def test_refresh_of_a_disabled_user_is_refused(core: AuthCore) -> None:
    user = await a_user(core)
    pair = await login(core)
    await core.store.users.update(user.id, disabled=True)
    await assert_refresh_refused(core, pair.refresh_token)


# -- logout and revocation ------------------------------------------------------------------


async def test_logout_refuses_the_access_token_at_once_and_the_refresh_token(
    core: AuthCore,
) -> None:
    await a_user(core)
    pair = await login(core)
    other = await login(core)
    principal = core.authenticate_access_token(pair.access_token)  # now in the cache
    await core.sessions.logout(principal, CALL)
    assert refused(core, pair.access_token) is TokenRevoked
    await assert_refresh_refused(core, pair.refresh_token)
    with pytest.raises(InvalidToken):
        await core.sessions.status(principal)
    assert refused(core, other.access_token) is None
    # Logging out twice is harmless.
    await core.sessions.logout(principal, CALL)


async def test_revoke_user_ends_every_session(core: AuthCore) -> None:
    user = await a_user(core)
    bob = await a_user(core, "bob@example.com")
    pairs = [await login(core) for _ in range(3)]
    bobs = await login(core, "bob@example.com")
    ended = await core.sessions.revoke_user(user.id, "admin")
    assert sorted(ended) == sorted(p.session.id for p in pairs)
    for pair in pairs:
        assert refused(core, pair.access_token) is TokenRevoked
        await assert_refresh_refused(core, pair.refresh_token)
    assert refused(core, bobs.access_token) is None
    assert bob.id != user.id
    # Tokens issued after the revocation are good.
    fresh = await login(core)
    assert refused(core, fresh.access_token) is None


async def test_revocation_reaches_another_worker_on_the_same_database(core: AuthCore) -> None:
    second = AuthCore(core.settings)
    await second.start()
    try:
        user = await a_user(core)
        pair = await login(core)
        kept = await login(core)
        assert second.authenticate_access_token(pair.access_token).user_id == user.id
        await core.sessions.logout(core.authenticate_access_token(pair.access_token), CALL)
        assert refused(core, pair.access_token) is TokenRevoked
        assert second.store is not None
        await second.revoked.sync(second.store.revocations)
        assert refused(second, pair.access_token) is TokenRevoked
        assert refused(second, kept.access_token) is None
        # The refresh token is refused by the other worker straight from the database.
        await assert_refresh_refused(second, pair.refresh_token)
        # And a user-wide revocation the same way.
        await core.sessions.revoke_user(user.id, "admin")
        await second.revoked.sync(second.store.revocations)
        assert refused(second, kept.access_token) is TokenRevoked
    finally:
        await second.close()


async def test_a_worker_started_later_knows_earlier_revocations(core: AuthCore) -> None:
    await a_user(core)
    pair = await login(core)
    await core.sessions.logout(core.authenticate_access_token(pair.access_token), CALL)
    later = AuthCore(core.settings)
    await later.start(follow=False)
    try:
        assert refused(later, pair.access_token) is TokenRevoked
    finally:
        await later.close()


# -- refusals that say nothing --------------------------------------------------------------


async def _unknown(core: AuthCore, user: User) -> None:
    await core.sessions.login("nobody@example.com", PASSWORD, CALL)


async def _wrong_password(core: AuthCore, user: User) -> None:
    await core.sessions.login(EMAIL, "not the password", CALL)


async def _empty_password(core: AuthCore, user: User) -> None:
    await core.sessions.login(EMAIL, "", CALL)


async def _disabled(core: AuthCore, user: User) -> None:
    await core.accounts.update(user.id, {"disabled": True}, None, CALL)
    await core.sessions.login(EMAIL, PASSWORD, CALL)


async def _no_password(core: AuthCore, user: User) -> None:
    await core.accounts.create("nopass@example.com", None)
    await core.sessions.login("nopass@example.com", "", CALL)


@pytest.mark.parametrize(
    "attempt",
    [
        pytest.param(_unknown, id="unknown-email"),
        pytest.param(_wrong_password, id="wrong-password"),
        pytest.param(_empty_password, id="empty-password"),
        pytest.param(_disabled, id="disabled-right-password"),
        pytest.param(_no_password, id="account-without-password"),
    ],
)
async def test_login_refusals_are_identical(
    core: AuthCore, attempt: Callable[[AuthCore, User], Awaitable[None]]
) -> None:
    user = await a_user(core)
    with pytest.raises(GatewayError) as caught:
        await attempt(core, user)
    error = caught.value
    assert (type(error), error.status, error.code, error.detail, dict(error.headers)) == (
        InvalidCredentials,
        401,
        "invalid_credentials",
        "the e-mail or password is not right",
        {"WWW-Authenticate": 'Bearer realm="gateway", error="invalid_request"'},
    )
    await settle(core)


async def test_five_failures_in_a_row_make_this_address_wait_for_this_account(
    core: AuthCore,
) -> None:
    await a_user(core)
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await login(core, password="not the password")
    # Even the right password waits now, from this address ...
    with pytest.raises(RateLimited) as caught:
        await login(core)
    assert (caught.value.status, caught.value.code) == (429, "rate_limited")
    assert caught.value.headers["Retry-After"] == "1"
    # ... but not from another one: the owner is not locked out by someone else's guesses.
    pair = await core.sessions.login(EMAIL, PASSWORD, CallInfo(ip="203.0.113.99"))
    assert refused(core, pair.access_token) is None
    outcomes = [e["outcome"] for e in await core.store.audit.list(event="login")]
    assert outcomes.count("throttled") == 1


async def test_an_unknown_account_waits_exactly_like_a_known_one(core: AuthCore) -> None:
    await a_user(core)
    seen = []
    for email in (EMAIL, "nobody@example.com"):
        for _ in range(5):
            with pytest.raises(InvalidCredentials):
                await core.sessions.login(email, "not the password", CALL)
        with pytest.raises(RateLimited) as caught:
            await core.sessions.login(email, "not the password", CALL)
        seen.append((caught.value.detail, dict(caught.value.headers)))
    assert seen[0] == seen[1]


async def test_a_success_resets_the_failure_count(core: AuthCore) -> None:
    await a_user(core)
    for _ in range(2):
        for _ in range(4):
            with pytest.raises(InvalidCredentials):
                await login(core, password="not the password")
        await login(core)


async def test_failures_from_one_address_are_throttled(core: AuthCore) -> None:
    await a_user(core)
    attacker = CallInfo(ip="198.51.100.66")
    for number in range(ADDRESS_LIMIT):
        with pytest.raises(InvalidCredentials):
            await core.sessions.login(f"guess{number}@example.com", "guess", attacker)
    for email, password in [("guess@example.com", "guess"), (EMAIL, PASSWORD)]:
        with pytest.raises(RateLimited) as caught:
            await core.sessions.login(email, password, attacker)
        error = caught.value
        assert (error.status, error.code) == (429, "rate_limited")
        retry_after = int(error.headers["Retry-After"])
        assert 1 <= retry_after <= 600
    # Another address is not affected.
    pair = await core.sessions.login(EMAIL, PASSWORD, CallInfo(ip="198.51.100.67"))
    assert refused(core, pair.access_token) is None
    outcomes = [e["outcome"] for e in await core.store.audit.list(event="login")]
    assert outcomes.count("throttled") == 2


# -- imported password hashes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(bcrypt_hash, id="bcrypt"),
        pytest.param(passlib_pbkdf2, id="passlib-pbkdf2-sha256"),
        pytest.param(django_pbkdf2, id="django-pbkdf2-sha256"),
    ],
)
async def test_imported_hashes_log_in_and_are_rehashed_to_argon2id(
    core: AuthCore, make: Callable[[str], str]
) -> None:
    imported = make(PASSWORD)
    report = await core.accounts.import_csv(
        ["email,password_hash,roles", f"{EMAIL},{imported},user;admin"]
    )
    assert (report.created, report.skipped) == (1, [])
    store = core.store
    with pytest.raises(InvalidCredentials):
        await login(core, password="not the password")
    before = await store.users.by_email(EMAIL)
    assert before is not None
    assert before.password_hash == imported
    pair = await login(core)
    assert core.authenticate_access_token(pair.access_token).roles == ("user", "admin")
    after = await store.users.by_email(EMAIL)
    assert after is not None
    assert after.password_hash is not None
    assert after.password_hash.startswith("$argon2id$")
    assert not core.passwords.needs_rehash(after.password_hash)
    assert core.passwords.verify(after.password_hash, PASSWORD)
    await login(core)  # and the new hash works


async def test_current_argon2id_hashes_are_left_alone(core: AuthCore) -> None:
    user = await a_user(core)
    await login(core)
    stored = await core.store.users.get(user.id)
    assert stored is not None
    assert stored.password_hash == user.password_hash


# -- status and extend ----------------------------------------------------------------------


async def test_status_and_extend(core: AuthCore) -> None:
    user = await a_user(core)
    pair = await login(core)
    principal = core.authenticate_access_token(pair.access_token)
    status = await core.sessions.status(principal)
    assert status["active"] is True
    assert (status["session_id"], status["user_id"]) == (pair.session.id, user.id)
    assert status["expires_at"] == pytest.approx(pair.session.expires_at)
    assert status["access_token_expires_at"] == principal.expires_at
    extended = await core.sessions.extend(principal, CALL)
    assert extended["session_id"] == pair.session.id
    assert extended["expires_at"] >= status["expires_at"]
    assert (extended["token_type"], extended["expires_in"]) == ("Bearer", 900)
    fresh = core.authenticate_access_token(extended["access_token"])
    assert (fresh.user_id, fresh.session_id) == (user.id, pair.session.id)
    after = await core.sessions.status(fresh)
    assert after["expires_at"] == pytest.approx(extended["expires_at"])
    await core.sessions.logout(fresh, CALL)
    for call in (core.sessions.status(principal), core.sessions.extend(principal, CALL)):
        with pytest.raises(InvalidToken):
            await call
    assert refused(core, extended["access_token"]) is TokenRevoked


async def test_status_of_a_credential_without_session(core: AuthCore) -> None:
    with pytest.raises(NotFound):
        await core.sessions.status(Principal(method="api_key", user_id="usr_1"))


# -- e-mail verification, forgotten passwords -----------------------------------------------


async def test_signup_mails_a_verification_token_that_works_once(
    core: AuthCore, tmp_path: Path
) -> None:
    user = await core.accounts.signup("Grace@Example.com", PASSWORD, "Grace", CALL, BASE_URL)
    assert (user.email, user.name, user.email_verified) == ("grace@example.com", "Grace", False)
    await settle(core)  # the mail goes after the answer
    [message] = outbox(tmp_path)
    assert message["To"] == "grace@example.com"
    assert f"{BASE_URL}/api/v1/auth/verify-email" in message.get_content()
    token = mailed_token(message)
    verified = await core.accounts.verify_email(token, CALL)
    assert (verified.id, verified.email_verified) == (user.id, True)
    stored = await core.store.users.get(user.id)
    assert stored is not None
    assert stored.email_verified is True
    with pytest.raises(InvalidToken):
        await core.accounts.verify_email(token, CALL)


async def test_signup_with_an_address_that_has_an_account_says_so_only_by_mail(
    core: AuthCore, tmp_path: Path
) -> None:
    grace = await core.accounts.signup("grace@example.com", PASSWORD, "Grace", CALL, BASE_URL)
    again = await core.accounts.signup("Grace@example.com", NEW_PASSWORD, "Eve", CALL, BASE_URL)
    assert again.id != grace.id
    assert again.id.startswith("usr_")
    assert (again.email, again.name, again.roles, again.email_verified) == (
        "grace@example.com",
        "Eve",
        ("user",),
        False,
    )
    assert await core.store.users.get(again.id) is None
    assert await core.store.users.get(grace.id) == grace
    await settle(core)
    mails = {message["Subject"]: message for message in outbox(tmp_path)}
    assert sorted(mails) == ["Confirm your e-mail address", "You already have an account"]
    already = mails["You already have an account"]
    assert already["To"] == "grace@example.com"
    assert f"{BASE_URL}/api/v1/auth/forgot-password" in already.get_content()
    assert "Eve" not in already.get_content()
    await login(core, "grace@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials):
        await login(core, "grace@example.com", NEW_PASSWORD)


async def test_signup_hashes_the_password_for_an_existing_address_too(
    core: AuthCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same work either way: argon2 (the library) is asked for one hash per signup."""
    hashed: list[str] = []
    real = PasswordHasher.hash

    def recording(self: PasswordHasher, password: str | bytes, *, salt: bytes | None = None) -> str:
        hashed.append(str(password))
        return real(self, password, salt=salt)

    monkeypatch.setattr(PasswordHasher, "hash", recording)
    await core.accounts.signup("grace@example.com", PASSWORD, None, CALL, BASE_URL)
    await core.accounts.signup("grace@example.com", NEW_PASSWORD, None, CALL, BASE_URL)
    assert hashed == [PASSWORD, NEW_PASSWORD]


@pytest.mark.parametrize(
    ("email", "password"),
    [
        pytest.param("not-an-email", PASSWORD, id="bad-email"),
        pytest.param("grace@example.com", "short", id="short-password"),
        pytest.param("grace@example.com", "x" * 1025, id="long-password"),
    ],
)
async def test_signup_refuses_bad_input_and_sends_nothing(
    core: AuthCore, tmp_path: Path, email: str, password: str
) -> None:
    with pytest.raises(InvalidRequest):
        await core.accounts.signup(email, password, None, CALL, BASE_URL)
    assert outbox(tmp_path) == []
    assert await core.store.users.count() == 0


async def test_password_reset_by_mail_ends_old_sessions(core: AuthCore, tmp_path: Path) -> None:
    await a_user(core)
    old = await login(core)
    await core.accounts.forgot_password("ADA@example.com", CALL, BASE_URL)
    [message] = outbox(tmp_path)
    assert message["To"] == EMAIL
    assert f"{BASE_URL}/api/v1/auth/reset-password" in message.get_content()
    token = mailed_token(message)
    # A password the policy refuses does not use the token up.
    with pytest.raises(InvalidRequest):
        await core.accounts.reset_password(token, "short", CALL)
    # A reset token is not a verification token.
    with pytest.raises(InvalidToken):
        await core.accounts.verify_email(token, CALL)
    await core.accounts.reset_password(token, NEW_PASSWORD, CALL)
    assert refused(core, old.access_token) is TokenRevoked
    await assert_refresh_refused(core, old.refresh_token)
    with pytest.raises(InvalidCredentials):
        await login(core)
    new = await login(core, password=NEW_PASSWORD)
    assert refused(core, new.access_token) is None
    with pytest.raises(InvalidToken):
        await core.accounts.reset_password(token, "yet another passphrase", CALL)


async def test_password_reset_lets_its_address_try_again_at_once(
    core: AuthCore, tmp_path: Path
) -> None:
    await a_user(core)
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await login(core, password="not the password")
    with pytest.raises(RateLimited):
        await login(core)
    await core.accounts.forgot_password(EMAIL, CALL, BASE_URL)
    await core.accounts.reset_password(mailed_token(outbox(tmp_path)[0]), NEW_PASSWORD, CALL)
    await login(core, password=NEW_PASSWORD)


async def _disable(core: AuthCore, user: User) -> None:
    await core.accounts.update(user.id, {"disabled": True}, None, CALL)


@pytest.mark.parametrize(
    ("email", "prepare"),
    [
        pytest.param("nobody@example.com", None, id="unknown"),
        pytest.param(EMAIL, _disable, id="disabled"),
        pytest.param("", None, id="empty"),
    ],
)
async def test_forgot_password_sends_nothing_and_says_nothing(
    core: AuthCore,
    tmp_path: Path,
    email: str,
    prepare: Callable[[AuthCore, User], Awaitable[None]] | None,
) -> None:
    user = await a_user(core)
    if prepare is not None:
        await prepare(core, user)
    assert await core.accounts.forgot_password(email, CALL, BASE_URL) is None
    assert outbox(tmp_path) == []


# -- secrets --------------------------------------------------------------------------------


async def test_embedded_secrets_are_generated_once_and_shared(tmp_path: Path) -> None:
    settings = support.auth_settings(tmp_path)
    assert settings.jwt_keyring is None
    cores = [AuthCore(settings) for _ in range(3)]
    await asyncio.gather(*(c.start(follow=False) for c in cores[:2]))
    await cores[2].start(follow=False)
    try:
        keyrings = {c.tokens.keyring for c in cores if c.tokens is not None}
        service = {c.service_keyring for c in cores}
        assert len(keyrings) == 1
        assert len(service) == 1
        assert keyrings != service
        user = await cores[0].accounts.create(EMAIL, PASSWORD)
        pair = await cores[0].sessions.login(EMAIL, PASSWORD, CALL)
        for other in cores[1:]:
            assert other.authenticate_access_token(pair.access_token).user_id == user.id
    finally:
        for c in cores:
            await c.close()
    # A restart reads the same secrets.
    again = AuthCore(settings)
    await again.start(follow=False)
    try:
        assert again.tokens is not None
        assert {again.tokens.keyring} == keyrings
    finally:
        await again.close()


async def test_given_secrets_are_used_and_not_stored(database_url: str, tmp_path: Path) -> None:
    jwt_keyring = Keyring.parse(f"given:{'g' * 40}")
    service_keyring = Keyring.parse(f"svc:{'h' * 40}")
    settings = support.auth_settings(
        tmp_path,
        database_url=database_url,
        jwt_keyring=jwt_keyring,
        service_keyring=service_keyring,
    )
    core = AuthCore(settings)
    await core.start(follow=False)
    try:
        assert core.tokens is not None
        assert core.tokens.keyring == jwt_keyring
        assert core.service_keyring == service_keyring
        store = core.store
        assert await store.settings.get("jwt_secret") is None
        assert await store.settings.get("service_secret") is None
    finally:
        await core.close()


async def test_closed_core_reports_not_ready(core: AuthCore) -> None:
    assert await core.ready() is True
    await core.close()
    assert await core.ready() is False
