"""`gateway NOUN list|show`, tenants by name, `user set-password|disable|enable` and `user create`
without a password, run as an operator runs them on SQLite and PostgreSQL (docs/operations/cli.md).
What they show is made through a real auth core on the same database."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from auth_core.errors import InvalidCredentials
from auth_core.service import CallInfo
from tests.gateway.test_admin_cli import PASSWORD, auth_core, gateway_cli

CALL = CallInfo(ip="10.9.8.7")


def ok(done: subprocess.CompletedProcess[str]) -> str:
    """stdout of a command that must succeed without a word on stderr (no warnings)."""
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


async def test_list_and_show_every_noun(tmp_path: Path, database_url: str) -> None:
    def cli(*args: str, stdin: str = "") -> str:
        return ok(gateway_cli(tmp_path, database_url, *args, stdin=stdin))

    tenant = json.loads(cli("tenant", "create", "Acme Corp", "--allow-ip", "10.0.0.0/8", "--json"))
    # The tenant by name, in another case: no id to copy from anywhere.
    key = json.loads(cli("key", "create", "--tenant", "acme corp", "--name", "sdk", "--json"))
    assert key["tenant_id"] == tenant["id"]
    user = json.loads(
        cli(
            *("user", "create", "--email", "ops@acme.example", "--password-stdin"),
            *("--tenant", "ACME CORP", "--json"),
            stdin=PASSWORD + "\n",
        )
    )
    assert user["tenant_id"] == tenant["id"]
    service = json.loads(cli("service-token", "create", "billing", "--json"))

    async with auth_core(tmp_path, database_url) as core:
        pair = await core.sessions.login("ops@acme.example", PASSWORD, CALL)
        pat, pat_secret = await core.pats.create(
            user["id"], {"name": "laptop", "scopes": ["read"]}, CALL
        )
        await core.bans.ban("192.0.2.7", "test", CALL, seconds=3600)

    secrets = (key["key"], service["token"], pat_secret, pair.refresh_token, pair.access_token)
    listed = {
        # noun: (its list's JSON key, the id its show takes, what else the list shows)
        "user": ("users", "ops@acme.example", user["id"]),
        "tenant": ("tenants", "Acme Corp", tenant["id"]),
        "key": ("api_keys", key["id"], key["prefix"]),
        "pat": ("pats", pat.id, "laptop"),
        "service-token": ("service_tokens", service["id"], "billing"),
        "session": ("sessions", pair.session.id, user["id"]),
        "ban": ("bans", "192.0.2.7", "192.0.2.7"),
    }
    for noun, (plural, reference, shown) in listed.items():
        as_json = json.loads(cli(noun, "list", "--json"))
        assert list(as_json) == [plural], noun
        (row,) = as_json[plural]
        as_table = cli(noun, "list")
        header, line = as_table.splitlines()
        assert header.split()[0] in ("ID", "ADDRESS"), noun
        assert shown in line, noun
        one = json.loads(cli(noun, "show", reference, "--json"))
        assert one == row, noun
        readable = cli(noun, "show", reference)
        assert shown in readable, noun
        for text in (json.dumps(as_json), as_table, readable):
            assert not any(secret in text for secret in secrets), noun
            assert "hash" not in text, noun

    user_row = json.loads(cli("user", "show", user["id"], "--json"))
    assert (user_row["email"], user_row["roles"]) == ("ops@acme.example", ["user"])
    session_row = json.loads(cli("session", "show", pair.session.id, "--json"))
    assert (session_row["user_id"], session_row["ip"]) == (user["id"], "10.9.8.7")
    pat_row = json.loads(cli("pat", "show", pat.id, "--json"))
    assert (pat_row["user_id"], pat_row["scopes"]) == (user["id"], ["read"])
    assert json.loads(cli("ban", "list", "--json"))["bans"][0]["address"] == "192.0.2.7"


async def test_list_filters_by_tenant_and_user(tmp_path: Path, database_url: str) -> None:
    def cli(*args: str, stdin: str = "") -> str:
        return ok(gateway_cli(tmp_path, database_url, *args, stdin=stdin))

    for name in ("north", "south"):
        cli("tenant", "create", name, "--allow-ip", "10.0.0.0/8")
        cli("key", "create", "--tenant", name, "--name", f"{name}-key")
        cli(
            *("user", "create", "--email", f"{name}@example.com", "--tenant", name),
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
    keys = json.loads(cli("key", "list", "--tenant", "SOUTH", "--json"))["api_keys"]
    assert [key["name"] for key in keys] == ["south-key"]
    assert len(json.loads(cli("key", "list", "--json"))["api_keys"]) == 2
    users = json.loads(cli("user", "list", "--tenant", "north", "--json"))["users"]
    assert [user["email"] for user in users] == ["north@example.com"]
    async with auth_core(tmp_path, database_url) as core:
        await core.sessions.login("north@example.com", PASSWORD, CALL)
        await core.sessions.login("south@example.com", PASSWORD, CALL)
    sessions = json.loads(cli("session", "list", "--user", "south@example.com", "--json"))
    assert len(sessions["sessions"]) == 1
    assert cli("pat", "list", "--user", "north@example.com") == "no pats\n"


def test_tenant_names_are_unique_in_any_case(tmp_path: Path, database_url: str) -> None:
    ok(gateway_cli(tmp_path, database_url, "tenant", "create", "Acme", "--allow-ip", "::1/128"))
    again = gateway_cli(tmp_path, database_url, "tenant", "create", "ACME")
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr == (
        "gateway: a tenant named 'ACME' exists already (names are unique, in any case)\n"
    )
    listed = json.loads(ok(gateway_cli(tmp_path, database_url, "tenant", "list", "--json")))
    assert [tenant["name"] for tenant in listed["tenants"]] == ["Acme"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tenant", "show", "nobody"), "no such tenant: 'nobody' is neither"),
        (("key", "list", "--tenant", "nobody"), "no such tenant"),
        (("user", "show", "who@example.com"), "no such user"),
        (("pat", "list", "--user", "who@example.com"), "no such user"),
        (("key", "show", "key_nope"), "no such API key"),
        (("pat", "show", "pat_nope"), "no such personal access token"),
        (("service-token", "show", "svc_nope"), "no such service token"),
        (("session", "show", "ses_nope"), "no such session"),
        (("ban", "show", "192.0.2.1"), "192.0.2.1 is not banned"),
        (("user", "disable", "who@example.com"), "no such user"),
    ],
)
def test_unknown_references_are_refused(
    tmp_path: Path, database_url: str, args: tuple[str, ...], message: str
) -> None:
    done = gateway_cli(tmp_path, database_url, *args)
    assert done.returncode == 1
    assert done.stdout == ""
    assert message in done.stderr
    assert "Traceback" not in done.stderr


async def test_set_password_disable_and_enable(tmp_path: Path, database_url: str) -> None:
    made = gateway_cli(tmp_path, database_url, "user", "create", "--email", "late@example.com")
    # Not on a terminal and no --password-stdin: made, and the operator is told what next.
    assert made.returncode == 0, made.stderr
    assert "late@example.com has no password" in made.stderr
    assert "forgot-password" in made.stderr
    async with auth_core(tmp_path, database_url) as core:
        with pytest.raises(InvalidCredentials):
            await core.sessions.login("late@example.com", PASSWORD, CALL)

    refused = gateway_cli(tmp_path, database_url, "user", "set-password", "late@example.com")
    assert refused.returncode == 1
    assert "--password-stdin" in refused.stderr
    short = gateway_cli(
        tmp_path,
        database_url,
        *("user", "set-password", "late@example.com", "--password-stdin"),
        stdin="short\n",
    )
    assert short.returncode == 1
    assert "at least 8 characters" in short.stderr

    out = ok(
        gateway_cli(
            tmp_path,
            database_url,
            *("user", "set-password", "late@example.com", "--password-stdin"),
            stdin=PASSWORD + "\n",
        )
    )
    assert "0 sessions ended" in out
    async with auth_core(tmp_path, database_url) as core:
        pair = await core.sessions.login("late@example.com", PASSWORD, CALL)

    disabled = json.loads(
        ok(gateway_cli(tmp_path, database_url, "user", "disable", "late@example.com", "--json"))
    )
    assert disabled["disabled"] is True
    async with auth_core(tmp_path, database_url) as core:
        with pytest.raises(InvalidCredentials):
            await core.sessions.login("late@example.com", PASSWORD, CALL)
        session = await core.store.sessions.get(pair.session.id)
        assert session is not None
        assert session.revoked_at is not None
        (entry,) = await core.store.audit.list(event="password_set")
        assert (entry["user_id"], entry["actor_id"]) == (disabled["id"], "cli")

    enabled = ok(gateway_cli(tmp_path, database_url, "user", "enable", disabled["id"]))
    assert enabled == f"enabled user {disabled['id']} <late@example.com>\n"
    async with auth_core(tmp_path, database_url) as core:
        await core.sessions.login("late@example.com", PASSWORD, CALL)
