"""No secret reaches a log at any level: a real gateway process with GATEWAY_LOG_LEVEL=debug,
on SQLite and on PostgreSQL, with Redis, through a user's whole life (signup, verification,
login, refresh, a PAT and an API key made and used, a password reset), then its stdout and
stderr (and the CLI's) are searched for every password, token, key and password hash. Then
the formatter's masking of credential-shaped text, and the libraries' levels."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from auth_core.service import AuthCore
from auth_core.tokens import Keyring
from gateway.logs import JsonFormatter, configure, redact
from tests.conftest import REDIS_URL
from tests.support import LOOPBACK, Upstream, auth_settings, routes, start_gateway_process

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple battery horse"
ADMIN_PASSWORD = "admin horse battery"
JWT_SECRET = "t1:" + "jwtsecret" * 6
SERVICE_SECRET = "s1:" + "servicesecret" * 4
GATEWAY = [sys.executable, "-m", "gateway"]

# The libraries whose debug lines carry statements, parameters, commands and requests.
LIBRARIES = ("aiosqlite", "asyncpg", "redis", "redis.asyncio.connection", "aiohttp.client")
ROUTES = (
    "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
    "{name: tokens, path: /api/v1/tokens, upstream: auth_core, auth: jwt}",
    "{name: tenants, path: /api/v1/tenants, upstream: auth_core, auth: jwt, roles: [admin]}",
    "{name: private, path: /private, upstream: echo, auth: jwt}",
    "{name: partner, path: /partner, upstream: echo, auth: api_key}",
    "{name: developer, path: /dev, upstream: echo, auth: pat}",
)


def mailed_token(outbox: Path, to: str, subject_word: str) -> str:
    """The one-time token of the newest mail to `to` whose subject has `subject_word`."""
    for path in sorted(outbox.glob("*.eml"), reverse=True):
        message = message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        if message["To"] == to and subject_word in message["Subject"]:
            found = re.findall(r"^([A-Za-z0-9_-]{40,})$", message.get_content(), re.MULTILINE)
            assert len(found) == 1
            return str(found[0])
    raise LookupError(f"no {subject_word} mail to {to}")


async def wait_for_mail(outbox: Path, to: str, subject_word: str) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        try:
            return mailed_token(outbox, to, subject_word)
        except (LookupError, FileNotFoundError):
            assert loop.time() < deadline, f"no {subject_word} mail"
            await asyncio.sleep(0.05)


async def call(
    client: ClientSession, method: str, url: str, expected: int, **options: Any
) -> dict[str, Any]:
    async with client.request(method, url, **options) as response:
        body = await response.read()
        assert response.status == expected, body
        return await response.json(content_type=None) if body else {}


async def test_no_secret_reaches_the_logs_at_debug_level(
    tmp_path: Path,
    database_url: str,
    redis_prefix: str,
    upstream: Upstream,
    client: ClientSession,
) -> None:
    env = {
        "GATEWAY_LOG_LEVEL": "debug",
        "GATEWAY_ACCESS_LOG": "stdout",
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_JWT_SECRET": JWT_SECRET,
        "GATEWAY_SERVICE_SECRET": SERVICE_SECRET,
        "GATEWAY_REDIS_URL": REDIS_URL,
        "GATEWAY_REDIS_PREFIX": redis_prefix,
        "GATEWAY_PASSWORD_HASH_COST": "1,8192,1",
        "GATEWAY_MAIL_URL": f"outbox:{tmp_path}/outbox",
    }
    admin = subprocess.run(
        [
            *GATEWAY,
            "user",
            "create",
            "--email",
            "root@example.com",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input=ADMIN_PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        cwd=tmp_path,
        check=False,
    )
    assert admin.returncode == 0, admin.stderr
    secrets: dict[str, str] = {
        "password": PASSWORD,
        "new password": NEW_PASSWORD,
        "admin password": ADMIN_PASSWORD,
        "JWT secret": JWT_SECRET.split(":", 1)[1],
        "service secret": SERVICE_SECRET.split(":", 1)[1],
    }
    outbox = tmp_path / "outbox"
    gateway = start_gateway_process(routes({"echo": [upstream.url]}, *ROUTES), tmp_path, env=env)
    try:
        url = gateway.url
        user = {"email": "ada@example.com", "password": PASSWORD}
        await call(client, "POST", f"{url}/api/v1/auth/signup", 201, json=user)
        secrets["verification token"] = await wait_for_mail(outbox, user["email"], "Confirm")
        await call(
            client, "POST", f"{url}/api/v1/auth/verify-email", 200,
            json={"token": secrets["verification token"]},
        )  # fmt: skip
        pair = await call(client, "POST", f"{url}/api/v1/auth/login", 200, json=user)
        secrets["first refresh token"] = pair["refresh_token"]
        pair = await call(
            client, "POST", f"{url}/api/v1/auth/refresh", 200,
            json={"refresh_token": pair["refresh_token"]},
        )  # fmt: skip
        secrets["access token"] = pair["access_token"]
        secrets["refresh token"] = pair["refresh_token"]
        bearer = {"Authorization": f"Bearer {pair['access_token']}"}
        await call(client, "GET", f"{url}/private", 200, headers=bearer)
        await call(client, "GET", f"{url}/private?access_token={pair['access_token']}", 401)

        pat = await call(
            client, "POST", f"{url}/api/v1/tokens", 201, json={"name": "ci"}, headers=bearer
        )
        secrets["PAT"] = pat["token"]
        await call(
            client, "GET", f"{url}/dev", 200, headers={"Authorization": f"Bearer {pat['token']}"}
        )

        root = await call(
            client, "POST", f"{url}/api/v1/auth/login", 200,
            json={"email": "root@example.com", "password": ADMIN_PASSWORD},
        )  # fmt: skip
        secrets["admin access token"] = root["access_token"]
        as_admin = {"Authorization": f"Bearer {root['access_token']}"}
        tenant = await call(
            client, "POST", f"{url}/api/v1/tenants", 201, headers=as_admin,
            json={"name": "Acme", "ip_whitelist": ["127.0.0.1/32"]},
        )  # fmt: skip
        key = await call(
            client, "POST", f"{url}/api/v1/tenants/{tenant['id']}/api-keys", 201,
            headers=as_admin, json={"name": "backend"},
        )  # fmt: skip
        secrets["API key"] = key["key"]
        await call(client, "GET", f"{url}/partner", 200, headers={"X-API-Key": key["key"]})
        wrong = key["key"][:-1] + ("A" if key["key"][-1] != "A" else "B")
        await call(client, "GET", f"{url}/partner", 401, headers={"X-API-Key": wrong})

        await call(
            client, "POST", f"{url}/api/v1/auth/forgot-password", 202,
            json={"email": user["email"]},
        )  # fmt: skip
        secrets["reset token"] = await wait_for_mail(outbox, user["email"], "Reset")
        await call(
            client, "POST", f"{url}/api/v1/auth/reset-password", 200,
            json={"token": secrets["reset token"], "password": NEW_PASSWORD},
        )  # fmt: skip
        await call(
            client, "POST", f"{url}/api/v1/auth/login", 200,
            json={"email": user["email"], "password": NEW_PASSWORD},
        )  # fmt: skip
        await call(client, "POST", f"{url}/api/v1/auth/login", 401, json=user)
        # A request the HTTP layer refuses: logged at debug (so the level is in force).
        with socket.create_connection((LOOPBACK, gateway.port), timeout=5) as sock:
            sock.sendall(b"GET /private HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 400")
    finally:
        assert gateway.stop() == 0
    logs = gateway.logs() + admin.stdout + admin.stderr
    assert '"level": "debug"' in logs, "debug logging was not on"

    settings = auth_settings(
        tmp_path,
        database_url=database_url,
        jwt_keyring=Keyring.parse(JWT_SECRET),
        service_keyring=Keyring.parse(SERVICE_SECRET),
    )
    core = AuthCore(settings)
    await core.start(follow=False)
    try:
        for address in ("ada@example.com", "root@example.com"):
            stored = await core.store.users.by_email(address)
            assert stored is not None
            assert stored.password_hash is not None
            secrets[f"password hash of {address}"] = stored.password_hash
            # The part after the parameters, in case a line cut the hash at a `$`.
            secrets[f"password hash digest of {address}"] = stored.password_hash.rsplit("$")[-1]
    finally:
        await core.close()
    for name in ("API key", "PAT", "refresh token", "first refresh token"):
        # What the database holds instead of the credential (the SQL parameters of its look-up).
        secrets[f"SHA-256 of the {name}"] = hashlib.sha256(secrets[name].encode()).hexdigest()
    secrets["access token signature"] = secrets["access token"].rsplit(".", 1)[1]

    found = [name for name, value in secrets.items() if value in logs]
    assert not found, f"in the logs: {found}"


# -- the formatter and the levels, in this process ------------------------------------------------

KEY = "gwk_" + "Ab3" * 12 + "xY"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJlX2hlcmU"
ARGON2 = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
BCRYPT = "$2b$12$" + "R9h/cIPz0gi.URNNX3kh2O" + "PST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(KEY, id="api-key"),
        pytest.param("gwp_" + "Z" * 38, id="pat"),
        pytest.param("gwr_" + "q" * 43, id="refresh-token"),
        pytest.param(JWT, id="jwt"),
        pytest.param(ARGON2, id="argon2"),
        pytest.param(BCRYPT, id="bcrypt"),
        pytest.param("$pbkdf2-sha256$29000$c2FsdA$aGFzaA", id="pbkdf2"),
    ],
)
def test_anything_shaped_like_a_credential_is_masked(secret: str) -> None:
    record = logging.LogRecord(
        "gateway", logging.WARNING, __file__, 1, "looked up %s (%r)", (secret, (secret,)), None
    )
    try:
        raise ValueError(f"refused {secret}")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert secret not in line["message"]
    assert secret not in line["exception"]
    assert line["message"].startswith("looked up [redacted]")
    assert "[redacted]" in line["exception"]


def test_masking_reads_long_client_text_in_one_pass() -> None:
    """Masking once tried a JWT match from every `eyJ` of a run such as `eyJ-eyJ-...`, each to
    the run's end: 32 KB took a quarter of a second, and 512 KB would take over a minute (this
    test's timeout). A JWT inside such text is still found."""
    text = "eyJ-" * 131_072 + " then " + JWT
    assert redact(text) == "eyJ-" * 131_072 + " then [redacted]"


def test_ordinary_text_is_left_alone() -> None:
    text = "worker 2 started (pid 4242); routes sha256 " + "ab" * 32 + "; user usr_1a2b3c4d"
    assert redact(text) == text


def test_the_libraries_stay_at_warning_whatever_the_level() -> None:
    root = logging.getLogger()
    saved = (root.level, root.handlers[:])
    levels = {name: logging.getLogger(name).level for name in LIBRARIES}
    try:
        configure("DEBUG")
        assert root.level == logging.DEBUG
        for name in LIBRARIES:
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
            assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
        configure("ERROR")
        assert not logging.getLogger("aiosqlite").isEnabledFor(logging.WARNING)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
