"""`gateway migrate`, `gateway user create` and `gateway users import`, run as an operator runs
them (a child process with GATEWAY_* in its environment), on SQLite and PostgreSQL; the users
they make are checked by logging in through a real auth core on the same database."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import bcrypt
import pytest
from argon2 import PasswordHasher

from auth_core.errors import InvalidCredentials
from auth_core.service import AuthCore, CallInfo
from auth_core.store.migrate import migrations
from tests.support import auth_settings as auth_settings
from tests.support import cases, command_environment, gateway_command

PASSWORD = "correct horse battery"
JWT_SECRET = "t1:" + "j" * 48
SERVICE_SECRET = "s1:" + "s" * 48


def gateway_cli(
    tmp_path: Path,
    database_url: str,
    *args: str,
    stdin: str = "",
    unset: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS` on `database_url`, in `tmp_path`, without the `unset` variables."""
    environment = command_environment(
        tmp_path,
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_JWT_SECRET=JWT_SECRET,
        GATEWAY_SERVICE_SECRET=SERVICE_SECRET,
    )
    for name in unset:
        environment.pop(name, None)
    return gateway_command(tmp_path, environment, *args, stdin=stdin)


@asynccontextmanager
async def auth_core(tmp_path: Path, database_url: str) -> AsyncIterator[AuthCore]:
    """A started auth core on the database the commands wrote to."""
    core = AuthCore(auth_settings(tmp_path, database_url=database_url))
    await core.start(follow=False)
    try:
        yield core
    finally:
        await core.close()


def create_user(
    tmp_path: Path, database_url: str, address: str, password: str, *roles: str
) -> subprocess.CompletedProcess[str]:
    role_args = [arg for role in roles for arg in ("--role", role)]
    return gateway_cli(
        tmp_path,
        database_url,
        "user",
        "create",
        "--email",
        address,
        "--password-stdin",
        *role_args,
        "--json",
        stdin=password + "\n",
    )


# -- migrate -----------------------------------------------------------------------------------


def test_migrate_applies_once(tmp_path: Path, database_url: str) -> None:
    first = gateway_cli(tmp_path, database_url, "migrate")
    assert first.returncode == 0, first.stderr
    names = ", ".join(name for _, name, _ in migrations())
    assert first.stdout == f"applied: {names}\n"
    second = gateway_cli(tmp_path, database_url, "migrate")
    assert second.returncode == 0, second.stderr
    assert second.stdout == "the database is up to date\n"


def test_migrate_needs_only_the_database(tmp_path: Path, database_url: str) -> None:
    done = gateway_cli(
        tmp_path,
        database_url,
        "migrate",
        unset=("GATEWAY_JWT_SECRET", "GATEWAY_SERVICE_SECRET"),
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("applied: 0001_identity.sql, ")


ENVIRONMENTS = [
    # (id, database URL, variables left out, what stderr says)
    ("not a database URL", "mysql://db/gateway", (), "GATEWAY_DATABASE_URL"),
    (
        "PostgreSQL down",
        "postgresql://postgres@127.0.0.1:1/gateway",
        (),
        "the database is unavailable",
    ),
    (
        "PostgreSQL without a JWT secret",
        "postgresql://postgres@127.0.0.1:1/gateway",
        ("GATEWAY_JWT_SECRET",),
        "GATEWAY_JWT_SECRET",
    ),
]


@pytest.mark.parametrize(("url", "unset", "reason"), cases(ENVIRONMENTS))
@pytest.mark.parametrize(
    "command",
    [("migrate",), ("user", "create", "--email", "a@example.com")],
    ids=["migrate", "user create"],
)
def test_commands_refuse_a_bad_environment(
    tmp_path: Path, command: tuple[str, ...], url: str, unset: tuple[str, ...], reason: str
) -> None:
    if command == ("migrate",) and unset:
        reason = "the database is unavailable"  # migrate asks for no secret: it uses none
    done = gateway_cli(tmp_path, url, *command, unset=unset)
    assert done.returncode != 0
    assert done.stdout == ""
    assert reason in done.stderr
    assert "Traceback" not in done.stderr


# -- user create -------------------------------------------------------------------------------

CREATED = [
    # (id, roles given, roles expected)
    ("one role", ("admin",), ["admin"]),
    ("repeated --role", ("admin", "support"), ["admin", "support"]),
    ("no --role", (), ["user"]),
]


@pytest.mark.parametrize(("roles", "expected"), cases(CREATED))
async def test_user_create_prints_one_json_object(
    tmp_path: Path, database_url: str, roles: tuple[str, ...], expected: list[str]
) -> None:
    done = create_user(tmp_path, database_url, "Root@Example.com", PASSWORD, *roles)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1, done.stdout
    created = json.loads(done.stdout)
    assert isinstance(created, dict)
    assert created["id"]
    assert (created["email"], created["roles"]) == ("root@example.com", expected)
    assert "password_hash" not in created

    async with auth_core(tmp_path, database_url) as core:
        pair = await core.sessions.login("root@example.com", PASSWORD, CallInfo())
        assert (pair.user.id, list(pair.user.roles)) == (created["id"], expected)
        assert pair.user.email_verified is True
        assert pair.user.password_hash is not None
        assert pair.user.password_hash.startswith("$argon2id$")
        (entry,) = await core.store.audit.list(event="user_create")
        assert (entry["user_id"], entry["actor_id"]) == (created["id"], "cli")


REFUSED = [
    # (id, e-mail, password, roles, create the same e-mail first, what stderr says)
    ("password too short", "a@example.com", "short", ("user",), False, "at least 8 characters"),
    ("empty password", "a@example.com", "", ("user",), False, "at least 8 characters"),
    ("duplicate e-mail", "a@example.com", PASSWORD, ("user",), True, "exists"),
    ("duplicate e-mail, other case", "A@EXAMPLE.COM", PASSWORD, ("user",), True, "exists"),
    ("not an e-mail", "not-an-address", PASSWORD, ("user",), False, "e-mail address"),
    ("bad role", "a@example.com", PASSWORD, ("Admin!",), False, "roles"),
]


@pytest.mark.parametrize(("address", "password", "roles", "first", "reason"), cases(REFUSED))
async def test_user_create_refusals(
    tmp_path: Path,
    database_url: str,
    address: str,
    password: str,
    roles: tuple[str, ...],
    first: bool,
    reason: str,
) -> None:
    if first:
        done = create_user(tmp_path, database_url, "a@example.com", PASSWORD)
        assert done.returncode == 0, done.stderr
    refused = create_user(tmp_path, database_url, address, password, *roles)
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert reason in refused.stderr
    assert "Traceback" not in refused.stderr
    async with auth_core(tmp_path, database_url) as core:
        users = await core.store.users.list(limit=10, offset=0)
    assert len(users) == (1 if first else 0)


# -- users import (SQLite) ---------------------------------------------------------------------


def _ab64(data: bytes) -> str:
    """passlib's adapted base64: '.' for '+', no padding."""
    return base64.b64encode(data).decode().rstrip("=").replace("+", ".")


def passlib_pbkdf2(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)
    return f"$pbkdf2-sha256$1000${_ab64(salt)}${_ab64(digest)}"


def django_pbkdf2(password: str) -> str:
    salt = "d4nGoSaltValue12"
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000)
    return f"pbkdf2_sha256$1000${salt}${base64.b64encode(digest).decode()}"


IMPORTED = [
    # (id, e-mail, password, hash, roles column, roles expected)
    (
        "bcrypt",
        "bcrypt@example.com",
        "bcrypt password 1",
        bcrypt.hashpw(b"bcrypt password 1", bcrypt.gensalt(rounds=4)).decode(),
        "user",
        ("user",),
    ),
    (
        "bcrypt $2y$ (PHP)",
        "php@example.com",
        "php password 5",
        "$2y$" + bcrypt.hashpw(b"php password 5", bcrypt.gensalt(rounds=4)).decode()[4:],
        "user",
        ("user",),
    ),
    (
        "passlib pbkdf2-sha256",
        "passlib@example.com",
        "passlib password 2",
        passlib_pbkdf2("passlib password 2"),
        "user;editor",
        ("user", "editor"),
    ),
    (
        "Django pbkdf2_sha256",
        "django@example.com",
        "django password 3",
        django_pbkdf2("django password 3"),
        "",
        ("user",),
    ),
    (
        "argon2id",
        "argon2@example.com",
        "argon2 password 4",
        PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1).hash("argon2 password 4"),
        "admin",
        ("admin",),
    ),
]
BAD_ROW = ("md5@example.com", "5f4dcc3b5aa765d61d8327deb882cf99", "user")


def write_csv(path: Path) -> Path:
    """The rows as a CSV writer exports them (argon2 hashes hold commas, so they are quoted)."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("email", "password_hash", "roles"))
        writer.writerows((address, stored, roles) for _, address, _, stored, roles, _ in IMPORTED)
        writer.writerow(BAD_ROW)
    return path


async def test_users_import(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/gateway.db"
    csv_file = write_csv(tmp_path / "users.csv")
    done = gateway_cli(tmp_path, database_url, "users", "import", str(csv_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"imported {len(IMPORTED)} users\n"
    skipped = [line for line in done.stderr.splitlines() if line.startswith("skipped")]
    assert skipped == [
        f"skipped line {len(IMPORTED) + 2} (md5@example.com): unsupported password hash format"
    ]

    async with auth_core(tmp_path, database_url) as core:
        store = core.store
        assert await store.users.by_email("md5@example.com") is None
        for case, address, password, stored, _, roles in IMPORTED:
            user = await store.users.by_email(address)
            assert user is not None, case
            assert (user.password_hash, user.roles) == (stored, roles), case
            with pytest.raises(InvalidCredentials):
                await core.sessions.login(address, password + "x", CallInfo())
            pair = await core.sessions.login(address, password, CallInfo())
            assert pair.user.id == user.id, case
            rehashed = await store.users.by_email(address)
            assert rehashed is not None, case
            assert rehashed.password_hash is not None, case
            assert rehashed.password_hash.startswith("$argon2id$"), case
            assert rehashed.password_hash != stored, case  # the argon2 row had other parameters
        (entry,) = await store.audit.list(event="users_import")
        assert entry["actor_id"] == "cli"
        assert entry["detail"] == {"created": len(IMPORTED), "skipped": 1}


async def test_users_import_again_skips_every_row(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/gateway.db"
    csv_file = write_csv(tmp_path / "users.csv")
    assert gateway_cli(tmp_path, database_url, "users", "import", str(csv_file)).returncode == 0
    again = gateway_cli(tmp_path, database_url, "users", "import", str(csv_file), "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["created"] == 0
    assert len(report["skipped"]) == len(IMPORTED) + 1
    for line, (_, address, *_) in zip(report["skipped"], IMPORTED, strict=False):
        assert line.endswith(f"({address}): already exists")


IMPORT_REFUSALS = [
    # (id, file content or None for a missing file, what stderr says)
    ("missing file", None, "cannot read"),
    ("wrong header", "mail,hash\na@example.com,$2b$04$x\n", "email,password_hash,roles"),
]


@pytest.mark.parametrize(("content", "reason"), cases(IMPORT_REFUSALS))
def test_users_import_refusals(tmp_path: Path, content: str | None, reason: str) -> None:
    csv_file = tmp_path / "users.csv"
    if content is not None:
        csv_file.write_text(content)
    done = gateway_cli(
        tmp_path, f"sqlite:///{tmp_path}/gateway.db", "users", "import", str(csv_file)
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert reason in done.stderr
    assert "Traceback" not in done.stderr
