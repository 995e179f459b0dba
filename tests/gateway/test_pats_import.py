"""`gateway pats import` (docs/migration.md) on SQLite and PostgreSQL, with the file the old
backend's PostgreSQL writes of its Prisma `PersonalAccessToken` table (the clear tokens), and
the imported tokens used on a real gateway's `auth: pat` and `auth: any` routes in front of a
real upstream: accepted until GATEWAY_LEGACY_PAT_UNTIL, refused as retired after it, and
revoked like any personal access token."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiohttp import ClientSession

from auth_core.service import AuthCore, CallInfo
from tests.gateway.import_support import foreign_url as foreign_url
from tests.gateway.import_support import gateway_cli
from tests.support import (
    Answer,
    Upstream,
    assert_problem,
    auth_settings,
    cases,
    fetch,
    quiet_settings,
    received_headers,
    routes,
    running_gateway,
)

PASSWORD = "correct horse battery"
CALL = CallInfo()

# The old backend's schema, as `prisma migrate` writes it for PostgreSQL.
PRISMA_SCHEMA = """
CREATE TABLE "User" ("id" TEXT NOT NULL, "email" TEXT NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id"));
CREATE TABLE "PersonalAccessToken" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3),
    "lastUsedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "PersonalAccessToken_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "PersonalAccessToken_token_key" ON "PersonalAccessToken"("token");
ALTER TABLE "PersonalAccessToken" ADD CONSTRAINT "PersonalAccessToken_userId_fkey"
    FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
"""
# What the migration guide tells the operator to run (docs/migration.md).
EXPORT = (
    'SELECT u.email, p.* FROM "PersonalAccessToken" p JOIN "User" u ON u.id = p."userId" '
    'ORDER BY p."createdAt"'
)

ROUTES = routes(
    {"echo": ["{upstream}"]},
    "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
    "{name: tokens, path: /api/v1/tokens, upstream: auth_core, auth: jwt}",
    "{name: scripts, path: /v1/scripts, upstream: echo, auth: pat}",
    "{name: anything, path: /v1/any, upstream: echo, auth: any}",
)


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def prisma_export(foreign_url: str, path: Path, tokens: dict[str, str]) -> None:
    """The old backend's tables with alice's and bob's tokens, exported as CSV with a header
    by PostgreSQL's COPY (timestamps as `2025-11-06 10:00:00.123`)."""
    connection = await asyncpg.connect(foreign_url)
    try:
        await connection.execute(PRISMA_SCHEMA)
        await connection.execute(
            """INSERT INTO "User" VALUES ('ckalice0000', 'Alice@Example.com'),
                   ('ckbob000000', 'bob@example.com')"""
        )
        rows = [
            # id, name, token, user, expiresAt, lastUsedAt
            ("ckpat1", "laptop cli", tokens["ci"], "ckalice0000", None, None),
            ("ckpat2", "old script", tokens["expired"], "ckalice0000", "2020-01-01", None),
            (
                "ckpat3",
                "deploy, prod",
                tokens["deploy"],
                "ckbob000000",
                "2099-12-31 23:59:59.5",
                "2025-11-06 10:00:00.123",
            ),
        ]
        for pat_id, name, token, user, expires, used in rows:
            await connection.execute(
                'INSERT INTO "PersonalAccessToken" (id, name, token, "userId", "expiresAt", '
                '"lastUsedAt", "createdAt", "updatedAt") VALUES ($1, $2, $3, $4, '
                "$5::text::timestamp, $6::text::timestamp, '2025-01-02 03:04:05.678', now())",
                pat_id,
                name,
                token,
                user,
                expires,
                used,
            )
        await connection.copy_from_query(EXPORT, output=str(path), format="csv", header=True)
    finally:
        await connection.close()


def legacy_tokens() -> dict[str, str]:
    """Tokens of the old backend's own format: `af_` and 48 hex digits, or bare base64url."""
    return {
        "ci": "af_" + secrets.token_hex(24),
        "expired": "af_" + secrets.token_hex(24),
        "deploy": secrets.token_urlsafe(32).replace(".", "x"),
    }


async def call(client: ClientSession, url: str, token: str) -> Answer:
    return await fetch(client, "GET", url, headers={"Authorization": f"Bearer {token}"})


async def run_cli(
    directory: Path, database_url: str, *args: str, **variables: str
) -> tuple[int, str, str]:
    done = await asyncio.to_thread(gateway_cli, directory, database_url, *args, **variables)
    return done.returncode, done.stdout, done.stderr


async def test_prisma_tokens_work_until_the_transition_ends_and_revoke_like_any(
    tmp_path: Path,
    database_url: str,
    foreign_url: str,
    upstream: Upstream,
    client: ClientSession,
) -> None:
    tokens = legacy_tokens()
    export = tmp_path / "pats.csv"
    await prisma_export(foreign_url, export, tokens)
    table = ROUTES.replace("{upstream}", upstream.url)
    open_until = time.time() + 86400
    accepting = quiet_settings(
        auth=auth_settings(tmp_path / "a", database_url=database_url, legacy_pat_until=open_until)
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with running_gateway(table, tmp_path / "a", accepting) as gw:
        core: AuthCore = gw.core
        alice = await core.accounts.create("alice@example.com", PASSWORD, verified=True)
        bob = await core.accounts.create("bob@example.com", PASSWORD, verified=True)

        status, out, err = await run_cli(
            tmp_path,
            database_url,
            "pats",
            "import",
            str(export),
            GATEWAY_LEGACY_PAT_UNTIL=rfc3339(open_until),
        )
        assert (status, out) == (0, "imported 2 tokens (0 stored already, 1 expired left out)\n")
        assert err == ""  # the transition is configured: no note

        # Only hashes are kept: no clear token anywhere in the table, nor in what was printed.
        stored = await core.store.db.fetch("SELECT * FROM pats ORDER BY name")
        assert [(row["name"], row["user_id"]) for row in stored] == [
            ("deploy, prod", bob.id),
            ("laptop cli", alice.id),
        ]
        everything = json.dumps([dict(row) for row in stored], default=str) + out + err
        for token in tokens.values():
            assert token not in everything
        assert {row["token_hash"] for row in stored} == {
            hashlib.sha256(tokens[kind].encode()).hexdigest() for kind in ("ci", "deploy")
        }
        by_name = {row["name"]: row for row in stored}
        assert by_name["laptop cli"]["prefix"] == tokens["ci"][:8]
        assert by_name["laptop cli"]["expires_at"] is None
        assert by_name["deploy, prod"]["expires_at"] == 4102444799.5  # 2099-12-31 23:59:59.5Z
        assert by_name["deploy, prod"]["last_used_at"] == 1762423200.123  # 2025-11-06 10:00Z
        assert by_name["deploy, prod"]["created_at"] == 1735787045.678  # 2025-01-02 03:04:05.678

        # Imported again: nothing changes.
        status, out, _ = await run_cli(
            tmp_path, database_url, "pats", "import", str(export), "--json"
        )
        assert (status, json.loads(out)) == (0, {"imported": 0, "unchanged": 2, "expired": 1})
        assert await core.store.db.fetchval("SELECT COUNT(*) FROM pats") == 2

        # On `auth: pat` and `auth: any`, as their users.
        for path, token, user in (
            ("/v1/scripts/run", tokens["ci"], alice),
            ("/v1/any/run", tokens["ci"], alice),
            ("/v1/scripts/run", tokens["deploy"], bob),
            ("/v1/any/run", tokens["deploy"], bob),
        ):
            answer = await call(client, gw.url + path, token)
            assert answer.status == 200, answer.body
            headers = received_headers(upstream.seen[-1])
            assert headers["x-user-id"] == [user.id]
            assert headers["x-auth-method"] == ["pat"]
        # forwardAuth takes them as `auth: any` does.
        validated = await call(client, f"{gw.url}/api/v1/auth/validate", tokens["deploy"])
        assert validated.status == 200, validated.body
        assert (validated.headers["X-User-Id"], validated.headers["X-Auth-Method"]) == (
            bob.id,
            "pat",
        )
        expired = await call(client, f"{gw.url}/v1/scripts/run", tokens["expired"])
        assert_problem(expired, 401, "invalid_token")
        made_up = await call(client, f"{gw.url}/v1/scripts/run", "af_" + secrets.token_hex(24))
        assert_problem(made_up, 401, "invalid_token")
        assert made_up.json()["detail"] == "the personal access token is not valid"

        # A JWT on the `auth: any` route is still the JWT's, with legacy tokens configured.
        login = await fetch(
            client,
            "POST",
            f"{gw.url}/api/v1/auth/login",
            json={"email": "alice@example.com", "password": PASSWORD},
        )
        assert login.status == 200, login.body
        access = login.json()["access_token"]
        answer = await call(client, f"{gw.url}/v1/any/run", access)
        assert answer.status == 200, answer.body
        assert received_headers(upstream.seen[-1])["x-auth-method"] == ["jwt"]

        # After the transition: refused, and the answer says why (another replica whose
        # setting has passed, on the same database).
        closed = quiet_settings(
            auth=dataclasses.replace(accepting.auth, legacy_pat_until=time.time() - 60)
        )
        async with running_gateway(table, tmp_path / "b", closed) as late:
            for path in ("/v1/scripts/run", "/v1/any/run"):
                retired = await call(client, late.url + path, tokens["deploy"])
                assert_problem(retired, 401, "invalid_token")
                detail = retired.json()["detail"]
                assert detail.startswith("this personal access token is in a retired format")
                assert "create a new token" in detail
            answer = await call(client, f"{late.url}/v1/any/run", access)
            assert answer.status == 200, answer.body

        # A grant cached while the transition lasted is refused once it has ended.
        gw.core.pats.legacy_until = time.time() - 1
        retired = await call(client, f"{gw.url}/v1/scripts/run", tokens["ci"])
        assert_problem(retired, 401, "invalid_token")
        assert "retired format" in retired.json()["detail"]
        gw.core.pats.legacy_until = open_until
        await gw.core.background_work.drain()
        refusals = await gw.core.store.audit.list(event="pat")
        # The expired and the made-up token (unknown), then the cached one after the
        # transition; not the other replica's refusals, made without a look-up.
        assert sorted(
            (entry["detail"]["reason"], entry["detail"].get("pat_id")) for entry in refusals
        ) == [
            ("legacy_retired", by_name["laptop cli"]["id"]),
            ("unknown", None),
            ("unknown", None),
        ]

        # Revoked like any personal access token: by its owner, through the API.
        listed = await fetch(
            client,
            "GET",
            f"{gw.url}/api/v1/tokens",
            headers={"Authorization": f"Bearer {access}"},
        )
        assert listed.status == 200, listed.body
        (mine,) = listed.json()["tokens"]
        assert (mine["name"], mine["prefix"]) == ("laptop cli", tokens["ci"][:8])
        deleted = await fetch(
            client,
            "DELETE",
            f"{gw.url}/api/v1/tokens/{mine['id']}",
            headers={"Authorization": f"Bearer {access}"},
        )
        assert deleted.status == 204, deleted.body
        revoked = await call(client, f"{gw.url}/v1/scripts/run", tokens["ci"])
        assert_problem(revoked, 401, "invalid_token")
        still = await call(client, f"{gw.url}/v1/scripts/run", tokens["deploy"])
        assert still.status == 200, still.body


async def test_without_the_setting_legacy_tokens_are_not_accepted(
    tmp_path: Path, upstream: Upstream, client: ClientSession
) -> None:
    """Imported, but GATEWAY_LEGACY_PAT_UNTIL unset: the import says so, and the token is
    refused as malformed; on `auth: any` it is left to the JWT authenticator."""
    token = "af_" + secrets.token_hex(24)
    export = tmp_path / "pats.csv"
    export.write_text(f"alice@example.com,laptop,{token},,\n")
    table = ROUTES.replace("{upstream}", upstream.url)
    async with running_gateway(table, tmp_path) as gw:
        await gw.core.accounts.create("alice@example.com", PASSWORD, verified=True)
        database_url = f"sqlite:///{tmp_path}/gateway.db"
        status, out, err = await run_cli(tmp_path, database_url, "pats", "import", str(export))
        assert (status, out) == (0, "imported 1 tokens (0 stored already, 0 expired left out)\n")
        assert err == (
            "note: tokens in the old format are refused until GATEWAY_LEGACY_PAT_UNTIL is set "
            "to a later date (docs/migration.md)\n"
        )
        refused = await call(client, f"{gw.url}/v1/scripts/x", token)
        assert_problem(refused, 401, "invalid_token")
        assert refused.json()["detail"] == "the personal access token is malformed"
        refused = await call(client, f"{gw.url}/v1/any/x", token)
        assert_problem(refused, 401, "invalid_token")
        assert "personal access token" not in refused.json()["detail"]


LEGACY = "af_" + "0123456789abcdef" * 3
OTHER = "af_" + "fedcba9876543210" * 3
HEADER = "email,name,token,expiresAt,lastUsedAt\n"
GOOD = f"alice@example.com,laptop,{LEGACY},,\n"
REFUSALS = [
    # (id, file content, what stderr says)
    (
        "an unknown owner",
        HEADER + GOOD + f"nobody@example.com,ci,{OTHER},,\n",
        ["refused line 3 (nobody@example.com, ci): no user has this e-mail address"],
    ),
    (
        "a stray quote",
        HEADER + GOOD + f'alice@example.com,"ci"x,{OTHER},,\n',
        ["gateway: line 3 is not CSV: ',' expected after '\"'"],
    ),
    (
        "the same token twice",
        HEADER + GOOD + f"alice@example.com,again,{LEGACY},,\n",
        ["refused line 3 (alice@example.com, again): the same token as line 2"],
    ),
    (
        "a token with a dot",
        HEADER + GOOD + "alice@example.com,jwt,eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl,,\n",
        [
            "refused line 3 (alice@example.com, jwt): the token is in no format the gateway "
            "accepts (16 to 512 letters, digits or -_~+/=, no dot, not gwk_ or gws_)"
        ],
    ),
    (
        "an API key",
        GOOD + "alice@example.com,key,gwk_" + "a" * 38 + ",,\n",
        [
            "refused line 2 (alice@example.com, key): the token is in no format the gateway "
            "accepts (16 to 512 letters, digits or -_~+/=, no dot, not gwk_ or gws_)"
        ],
    ),
    (
        "a short token",
        GOOD + "alice@example.com,short,abc123,,\n",
        [
            "refused line 2 (alice@example.com, short): the token is in no format the gateway "
            "accepts (16 to 512 letters, digits or -_~+/=, no dot, not gwk_ or gws_)"
        ],
    ),
    (
        "a bad expiry",
        HEADER + GOOD + f"alice@example.com,ci,{OTHER},next tuesday,\n",
        [
            "refused line 3 (alice@example.com, ci): expires_at is not a date-time "
            "(e.g. 2025-11-06 10:00:00.123)"
        ],
    ),
    (
        "no name, and a control character in the address",
        HEADER + f",,{OTHER},,\nalice\x1b@example.com,ci,{LEGACY},,\n",
        [
            "refused line 2 (?, ?): email must be an e-mail address (no control characters)",
            # Not an address: neither it nor the name is shown (they could be the token).
            "refused line 3 (?, ?): email must be an e-mail address (no control characters)",
        ],
    ),
    (
        # Without a header the columns are email, name, token: a file whose token comes first
        # is refused line by line, and the token (in the e-mail column) is never shown.
        "no header, the token first",
        f"{OTHER},laptop,alice@example.com,,\n",
        ["refused line 1 (?, ?): email must be an e-mail address (no control characters)"],
    ),
    (
        "a header without the token's owner",
        "name,token\nlaptop," + LEGACY + "\n",
        [
            "gateway: the header lacks email (it needs email, name and token; expires_at and "
            "last_used_at are optional)"
        ],
    ),
]


@pytest.mark.parametrize(("content", "said"), cases(REFUSALS))
async def test_refused_files_import_nothing(
    tmp_path: Path, database_url: str, content: str, said: list[str]
) -> None:
    export = tmp_path / "pats.csv"
    export.write_text(content, encoding="utf-8", newline="")
    core = AuthCore(auth_settings(tmp_path, database_url=database_url))
    await core.start(follow=False)
    try:
        await core.accounts.create("alice@example.com", PASSWORD, verified=True)
        status, out, err = await run_cli(tmp_path, database_url, "pats", "import", str(export))
        assert status == 1
        assert out == ""
        lines = err.splitlines()
        assert lines[: len(said)] == said
        if said[0].startswith("refused"):
            assert lines[len(said) :] == [f"gateway: nothing imported: {len(said)} lines refused"]
        assert "Traceback" not in err
        for token in (LEGACY, OTHER):
            assert token not in err
        assert await core.store.db.fetchval("SELECT COUNT(*) FROM pats") == 0
    finally:
        await core.close()


async def test_a_token_stored_for_another_user_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    core = AuthCore(auth_settings(tmp_path, database_url=database_url))
    await core.start(follow=False)
    try:
        alice = await core.accounts.create("alice@example.com", PASSWORD, verified=True)
        await core.accounts.create("bob@example.com", PASSWORD, verified=True)
        first, second = tmp_path / "first.csv", tmp_path / "second.csv"
        first.write_text(GOOD)
        second.write_text(f"bob@example.com,stolen,{LEGACY},,\n")
        assert (await run_cli(tmp_path, database_url, "pats", "import", str(first)))[0] == 0
        status, out, err = await run_cli(tmp_path, database_url, "pats", "import", str(second))
        assert (status, out) == (1, "")
        assert err.splitlines() == [
            "refused line 1 (bob@example.com, stolen): this token is stored for another user",
            "gateway: nothing imported: 1 lines refused",
        ]
        rows = await core.store.db.fetch("SELECT user_id, name FROM pats")
        assert [(row["user_id"], row["name"]) for row in rows] == [(alice.id, "laptop")]
    finally:
        await core.close()


async def test_the_header_may_name_the_columns_in_any_order(tmp_path: Path) -> None:
    """Prisma's names or ours, other columns ignored; rows written by a spreadsheet (BOM,
    CRLF)."""
    content = (
        "\ufefflast_used_at,token,id,owner_email,name,expires_at\r\n"
        f"2025-11-06T10:00:00Z,{LEGACY},x1,alice@example.com,laptop,2099-01-01T00:00:00+01:00\r\n"
    )
    export = tmp_path / "pats.csv"
    export.write_text(content, encoding="utf-8", newline="")
    database_url = f"sqlite:///{tmp_path}/gateway.db"
    core = AuthCore(auth_settings(tmp_path, database_url=database_url))
    await core.start(follow=False)
    try:
        await core.accounts.create("alice@example.com", PASSWORD, verified=True)
        status, _, err = await run_cli(tmp_path, database_url, "pats", "import", str(export))
        assert status == 0, err
        row = await core.store.db.fetchrow("SELECT * FROM pats")
        assert row is not None
        assert (row["name"], row["expires_at"], row["last_used_at"]) == (
            "laptop",
            4070905200.0,  # 2099-01-01T00:00:00+01:00
            1762423200.0,  # 2025-11-06T10:00:00Z
        )
    finally:
        await core.close()


async def test_an_imported_token_expires_when_the_transition_ends(
    tmp_path: Path, database_url: str
) -> None:
    """The principal of a token in the old format expires at GATEWAY_LEGACY_PAT_UNTIL (or at
    its own expiry, if sooner), so that a websocket opened with it is closed then too."""
    until = float(int(time.time()) + 3600)
    sooner = int(time.time()) + 600
    ci, deploy = "af_" + secrets.token_hex(24), "af_" + secrets.token_hex(24)
    export = tmp_path / "pats.csv"
    export.write_text(
        HEADER
        + f"alice@example.com,ci,{ci},,\n"
        + f"alice@example.com,deploy,{deploy},{rfc3339(sooner)},\n"
    )
    core = AuthCore(auth_settings(tmp_path, database_url=database_url, legacy_pat_until=until))
    await core.start(follow=False)
    try:
        await core.accounts.create("alice@example.com", PASSWORD, verified=True)
        status, _, err = await run_cli(tmp_path, database_url, "pats", "import", str(export))
        assert status == 0, err
        assert (await core.pats.authenticate(ci, CALL)).expires_at == until
        assert (await core.pats.authenticate(deploy, CALL)).expires_at == sooner
    finally:
        await core.close()
