"""`gateway tenant create`, `gateway key create|rotate|revoke` and `gateway user create
--tenant`, run as an operator runs them, on SQLite and PostgreSQL; what they make is checked
through a real auth core on the same database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auth_core.errors import InvalidApiKey, IpNotAllowed
from auth_core.models import Principal
from auth_core.service import AuthCore, CallInfo
from tests.gateway.test_admin_cli import PASSWORD, auth_core, gateway_cli

CALL = CallInfo()


async def key_principal(core: AuthCore, key: str, ip: str = "10.1.2.3") -> Principal:
    found = core.keys.authenticate(key, ip, CALL)
    return found if isinstance(found, Principal) else await found


async def test_tenant_key_life_cycle_from_the_command_line(
    tmp_path: Path, database_url: str
) -> None:
    made = gateway_cli(
        tmp_path,
        database_url,
        *("tenant", "create", "Acme", "--origin", "https://app.acme.example"),
        *("--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::/32", "--json"),
    )
    assert made.returncode == 0, made.stderr
    tenant = json.loads(made.stdout)
    assert tenant["id"].startswith("ten_")
    assert tenant["origins"] == ["https://app.acme.example"]
    assert tenant["ip_whitelist"] == ["10.0.0.0/8", "2001:db8::/32"]

    created = gateway_cli(
        tmp_path,
        database_url,
        *("key", "create", "--tenant", tenant["id"], "--name", "sdk", "--expires", "90d"),
        "--json",
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("gwk_")
    assert key["expires_at"] is not None
    async with auth_core(tmp_path, database_url) as core:
        assert (await key_principal(core, key["key"])).credential_id == key["id"]
        with pytest.raises(IpNotAllowed):
            await key_principal(core, key["key"], "192.0.2.1")

    rotated = gateway_cli(
        tmp_path, database_url, "key", "rotate", key["id"], "--grace", "1h", "--json"
    )
    assert rotated.returncode == 0, rotated.stderr
    successor = json.loads(rotated.stdout)
    assert successor["id"] != key["id"]
    assert successor["previous"]["rotated_to"] == successor["id"]
    async with auth_core(tmp_path, database_url) as core:
        # Both work during the grace period.
        await key_principal(core, key["key"])
        await key_principal(core, successor["key"])

    revoked = gateway_cli(tmp_path, database_url, "key", "revoke", key["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert key["id"] in revoked.stdout
    async with auth_core(tmp_path, database_url) as core:
        with pytest.raises(InvalidApiKey):
            await key_principal(core, key["key"])
        await key_principal(core, successor["key"])
        events = [entry["event"] for entry in await core.store.audit.list()]
        assert {"tenant_create", "api_key_create", "api_key_rotate", "api_key_revoke"} <= set(
            events
        )


async def test_a_tenant_admin_from_the_command_line(tmp_path: Path, database_url: str) -> None:
    tenant = json.loads(
        gateway_cli(tmp_path, database_url, "tenant", "create", "Acme", "--json").stdout
    )
    made = gateway_cli(
        tmp_path,
        database_url,
        *("user", "create", "--email", "boss@acme.example", "--password-stdin"),
        *("--role", "tenant_admin", "--tenant", tenant["id"], "--json"),
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    user = json.loads(made.stdout)
    assert (user["tenant_id"], user["roles"]) == (tenant["id"], ["tenant_admin"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("key", "create", "--tenant", "ten_nope"), "no such tenant"),
        (("key", "revoke", "key_nope"), "no such API key"),
        (("key", "rotate", "key_nope"), "no such API key"),
        (("tenant", "create", "Bad", "--allow-ip", "10.0.0.1/8"), "host bits set"),
        (("tenant", "create", "Bad", "--origin", "https://*.com"), "not a wildcard origin"),
        (("user", "create", "--email", "a@b.example", "--tenant", "ten_nope"), "no such tenant"),
    ],
)
def test_mistakes_are_refused_with_a_message(
    tmp_path: Path, database_url: str, args: tuple[str, ...], message: str
) -> None:
    done = gateway_cli(tmp_path, database_url, *args)
    assert done.returncode != 0
    assert message in done.stderr
    assert done.stdout == ""
