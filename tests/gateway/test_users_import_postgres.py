"""`gateway users import --from-postgres URL --query SQL --mapping-out FILE` (docs/migration.md)
into SQLite and PostgreSQL, from a real foreign PostgreSQL schema: a dashboard's
`omni_dashboard.admin_users` table with its own ids, password hashes and roles. The imported
users log in with their old passwords; the mapping file fills the old table's `auth_user_id`."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import bcrypt
import pytest
from argon2 import PasswordHasher

from auth_core.errors import InvalidCredentials
from auth_core.service import AuthCore, CallInfo
from tests.gateway.import_support import foreign_url as foreign_url
from tests.gateway.import_support import gateway_cli
from tests.support import auth_settings, cases, free_port

CALL = CallInfo()
GATEWAY_PASSWORD = "the gateway password"

OLD_SCHEMA = """
CREATE SCHEMA omni_dashboard;
CREATE TABLE omni_dashboard.admin_users (
    id SERIAL PRIMARY KEY,
    username VARCHAR(100) UNIQUE NOT NULL,
    email VARCHAR(255) UNIQUE NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    role VARCHAR(50) NOT NULL DEFAULT 'viewer',
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    auth_user_id TEXT
);
"""
QUERY = (
    "SELECT id, email, password_hash, role AS roles FROM omni_dashboard.admin_users "
    "WHERE is_active ORDER BY id"
)


def passlib_pbkdf2(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)

    def ab64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=").replace("+", ".")

    return f"$pbkdf2-sha256$1000${ab64(salt)}${ab64(digest)}"


# (username, e-mail, password, hash, role, active)
OLD_USERS = [
    (
        "alice",
        "Alice@Example.com",
        "alice old password",
        bcrypt.hashpw(b"alice old password", bcrypt.gensalt(rounds=4)).decode(),
        "admin",
        True,
    ),
    (
        "bob",
        "bob@example.com",
        "bob old password",
        passlib_pbkdf2("bob old password"),
        "viewer",
        True,
    ),
    (
        "carol",
        "carol@example.com",
        "carol old password",
        PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("carol old password"),
        "operator; viewer",
        True,
    ),
    (
        "dave",
        "dave@example.com",
        "dave old password",
        passlib_pbkdf2("dave old password"),
        "viewer",
        True,
    ),
    ("erin", "erin@example.com", "erin old password", passlib_pbkdf2("x"), "viewer", False),
]


async def old_service(foreign_url: str, extra: Sequence[tuple[str, str, str, str]] = ()) -> None:
    """The old table: OLD_USERS (ids 1 to 5), then `extra` (username, e-mail, hash, role)."""
    connection = await asyncpg.connect(foreign_url)
    try:
        await connection.execute(OLD_SCHEMA)
        rows = [row[:2] + row[3:] for row in OLD_USERS] + [(*row, True) for row in extra]
        await connection.executemany(
            "INSERT INTO omni_dashboard.admin_users (username, email, password_hash, role, "
            "is_active) VALUES ($1, $2, $3, $4, $5)",
            rows,
        )
    finally:
        await connection.close()


async def run_cli(directory: Path, database_url: str, *args: str) -> tuple[int, str, str]:
    done = await asyncio.to_thread(gateway_cli, directory, database_url, *args)
    return done.returncode, done.stdout, done.stderr


def read_mapping(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as source:
        return list(csv.DictReader(source))


async def test_users_come_over_with_their_passwords_and_a_mapping(
    tmp_path: Path, database_url: str, foreign_url: str
) -> None:
    await old_service(foreign_url)
    mapping_file = tmp_path / "mapping.csv"
    core = AuthCore(auth_settings(tmp_path, database_url=database_url))
    await core.start(follow=False)
    try:
        # dave has an account in the gateway already: kept as it is, and mapped.
        dave = await core.accounts.create("dave@example.com", GATEWAY_PASSWORD, verified=True)
        args = ("users", "import", "--from-postgres", foreign_url, "--query", QUERY)
        status, out, err = await run_cli(
            tmp_path, database_url, *args, "--mapping-out", str(mapping_file)
        )
        assert (status, out, err) == (0, "imported 3 users (1 had an account already)\n", "")

        users = {}
        for _, address, *_ in OLD_USERS:
            user = await core.store.users.by_email(address.lower())
            users[address.lower()] = user
        assert users["erin@example.com"] is None  # not active: not selected
        alice, bob, carol = (users[f"{n}@example.com"] for n in ("alice", "bob", "carol"))
        assert alice is not None
        assert bob is not None
        assert carol is not None
        assert (alice.roles, bob.roles, carol.roles) == (
            ("admin",),
            ("viewer",),
            ("operator", "viewer"),
        )
        assert read_mapping(mapping_file) == [
            {"old_id": "1", "user_id": alice.id, "email": "alice@example.com"},
            {"old_id": "2", "user_id": bob.id, "email": "bob@example.com"},
            {"old_id": "3", "user_id": carol.id, "email": "carol@example.com"},
            {"old_id": "4", "user_id": dave.id, "email": "dave@example.com"},
        ]

        # The old passwords work (and are re-hashed); dave keeps the gateway's.
        for address, password in (
            ("alice@example.com", "alice old password"),
            ("bob@example.com", "bob old password"),
            ("carol@example.com", "carol old password"),
            ("dave@example.com", GATEWAY_PASSWORD),
        ):
            with pytest.raises(InvalidCredentials):
                await core.sessions.login(address, password + "x", CALL)
            pair = await core.sessions.login(address, password, CALL)
            assert pair.user.email == address
        with pytest.raises(InvalidCredentials):
            await core.sessions.login("dave@example.com", "dave old password", CALL)

        # The old service fills its auth_user_id column from the mapping.
        connection = await asyncpg.connect(foreign_url)
        try:
            await connection.execute("CREATE TEMP TABLE mapping (old_id INT, user_id TEXT, e TEXT)")
            await connection.copy_to_table(
                "mapping", source=str(mapping_file), format="csv", header=True
            )
            await connection.execute(
                "UPDATE omni_dashboard.admin_users a SET auth_user_id = m.user_id "
                "FROM mapping m WHERE a.id = m.old_id"
            )
            linked = await connection.fetch(
                "SELECT username, auth_user_id FROM omni_dashboard.admin_users ORDER BY id"
            )
        finally:
            await connection.close()
        assert [(row["username"], row["auth_user_id"]) for row in linked] == [
            ("alice", alice.id),
            ("bob", bob.id),
            ("carol", carol.id),
            ("dave", dave.id),
            ("erin", None),
        ]

        # Again: nobody created, the same mapping.
        status, out, _ = await run_cli(
            tmp_path, database_url, *args, "--mapping-out", str(mapping_file), "--json"
        )
        assert (status, json.loads(out)) == (0, {"created": 0, "existing": 4})
        assert [row["user_id"] for row in read_mapping(mapping_file)] == [
            alice.id,
            bob.id,
            carol.id,
            dave.id,
        ]
        assert await core.store.users.count() == 4
        entries = await core.store.audit.list(event="users_import")
        assert sorted(entry["detail"]["created"] for entry in entries) == [0, 3]
    finally:
        await core.close()


async def test_roles_as_an_array_and_no_id_column(
    tmp_path: Path, database_url: str, foreign_url: str
) -> None:
    await old_service(foreign_url)
    query = (
        "SELECT email, password_hash, ARRAY[role, 'staff'] AS roles "
        "FROM omni_dashboard.admin_users WHERE username = 'bob'"
    )
    status, out, err = await run_cli(
        tmp_path, database_url, "users", "import", "--from-postgres", foreign_url, "--query", query
    )
    assert (status, out, err) == (0, "imported 1 users (0 had an account already)\n", "")
    core = AuthCore(auth_settings(tmp_path, database_url=database_url))
    await core.start(follow=False)
    try:
        bob = await core.store.users.by_email("bob@example.com")
        assert bob is not None
        assert bob.roles == ("viewer", "staff")
    finally:
        await core.close()


SELECT = "SELECT id, email, password_hash, role AS roles FROM omni_dashboard.admin_users"
REFUSALS = [
    # (id, extra rows of the old table, query, what stderr says (its lines))
    (
        "a query that fails",
        [],
        "SELECT email, password_hash FROM omni_dashboard.nobody",
        ['gateway: the query failed: relation "omni_dashboard.nobody" does not exist'],
    ),
    (
        "a query that writes",
        [],
        "UPDATE omni_dashboard.admin_users SET role = 'x' RETURNING email, password_hash",
        ["gateway: the query failed: cannot execute UPDATE in a read-only transaction"],
    ),
    (
        "two statements",
        [],
        f"{SELECT}; DROP TABLE omni_dashboard.admin_users",
        ["gateway: the query failed: cannot insert multiple commands into a prepared statement"],
    ),
    (
        "no password_hash column",
        [],
        "SELECT id, email FROM omni_dashboard.admin_users",
        [
            "gateway: the query must return the columns email and password_hash (roles and "
            "id are optional); it lacks password_hash"
        ],
    ),
    (
        "the same e-mail twice (in another case)",
        [("alice2", "alice@example.COM", OLD_USERS[0][3], "viewer")],
        f"{SELECT} ORDER BY id",
        [
            "refused row 6 (alice@example.com): the same e-mail as row 1",
            "gateway: nothing imported: 1 rows refused",
        ],
    ),
    (
        "an unknown hash format and bad roles",
        [
            ("md5", "md5@example.com", "5f4dcc3b5aa765d61d8327deb882cf99", "viewer"),
            ("upper", "upper@example.com", OLD_USERS[0][3], "Super Admin"),
        ],
        f"{SELECT} ORDER BY id",
        [
            "refused row 6 (md5@example.com): no password hash in a format the gateway "
            "verifies (bcrypt, argon2, pbkdf2-sha256 of passlib or Django)",
            "refused row 7 (upper@example.com): roles must be a list of lower-case names",
            "gateway: nothing imported: 2 rows refused",
        ],
    ),
    (
        "no e-mail address",
        [("nomail", "not an address", OLD_USERS[0][3], "viewer")],
        f"{SELECT} ORDER BY id",
        [
            "refused row 6 (not an address): email must be an e-mail address (no control "
            "characters)",
            "gateway: nothing imported: 1 rows refused",
        ],
    ),
]


@pytest.mark.parametrize(("extra", "query", "said"), cases(REFUSALS))
async def test_refusals_import_nobody(
    tmp_path: Path,
    database_url: str,
    foreign_url: str,
    extra: list[tuple[str, str, str, str]],
    query: str,
    said: list[str],
) -> None:
    await old_service(foreign_url, extra)
    mapping_file = tmp_path / "mapping.csv"
    status, out, err = await run_cli(
        tmp_path,
        database_url,
        "users",
        "import",
        "--from-postgres",
        foreign_url,
        "--query",
        query,
        "--mapping-out",
        str(mapping_file),
    )
    assert (status, out) == (1, "")
    assert err.splitlines() == said
    assert not mapping_file.exists()
    core = AuthCore(auth_settings(tmp_path, database_url=database_url))
    await core.start(follow=False)
    try:
        assert await core.store.users.count() == 0
    finally:
        await core.close()
    connection = await asyncpg.connect(foreign_url)
    try:  # the old table is as it was
        roles = await connection.fetch("SELECT role FROM omni_dashboard.admin_users ORDER BY id")
    finally:
        await connection.close()
    assert [row["role"] for row in roles][:5] == ["admin", "viewer", "operator; viewer"] + [
        "viewer"
    ] * 2


async def test_the_source_database_unreachable_or_misnamed(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/gateway.db"
    unreachable = f"postgresql://old:s3cret-pw@127.0.0.1:{free_port()}/old"
    status, out, err = await run_cli(
        tmp_path, database_url, "users", "import", "--from-postgres", unreachable, "--query", "x"
    )
    assert (status, out) == (1, "")
    assert err.startswith("gateway: cannot connect to the source database: ")
    assert "s3cret-pw" not in err
    assert "Traceback" not in err


OPTION_REFUSALS = [
    # (id, arguments after `users import`, what stderr says)
    ("nothing to import", [], "gateway: give a CSV file or --from-postgres URL --query SQL\n"),
    (
        "a file and a database",
        ["users.csv", "--from-postgres", "postgresql://127.0.0.1/x", "--query", "SELECT 1"],
        "gateway: give a CSV file or --from-postgres, not both\n",
    ),
    (
        "no query",
        ["--from-postgres", "postgresql://127.0.0.1/x"],
        "gateway: --from-postgres needs --query SQL\n",
    ),
    (
        "a mapping from a file",
        ["users.csv", "--mapping-out", "m.csv"],
        "gateway: --query and --mapping-out go with --from-postgres\n",
    ),
]


@pytest.mark.parametrize(("args", "said"), cases(OPTION_REFUSALS))
async def test_option_refusals(tmp_path: Path, args: list[str], said: str) -> None:
    database_url = f"sqlite:///{tmp_path}/gateway.db"
    status, out, err = await run_cli(tmp_path, database_url, "users", "import", *args)
    assert (status, out, err) == (2, "", said)


async def test_a_mapping_needs_an_id_column(tmp_path: Path, foreign_url: str) -> None:
    await old_service(foreign_url)
    database_url = f"sqlite:///{tmp_path}/gateway.db"
    status, out, err = await run_cli(
        tmp_path,
        database_url,
        "users",
        "import",
        "--from-postgres",
        foreign_url,
        "--query",
        "SELECT email, password_hash FROM omni_dashboard.admin_users",
        "--mapping-out",
        str(tmp_path / "mapping.csv"),
    )
    assert (status, out) == (1, "")
    assert err == "gateway: --mapping-out needs the query to return an id column\n"
