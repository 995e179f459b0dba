"""Service tokens (`gws_...`), the credentials of internal services: made, listed and revoked
through the admin API and the command line on SQLite and PostgreSQL, stored as hashes only,
refused at once everywhere when revoked (two gateways sharing PostgreSQL and Redis), refused
without the database when malformed, and counted towards a ban when wrong. The gateway serves
the shipped routes.yaml with its echo upstream, which reports what it received."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from auth_core import credentials
from auth_core.errors import InvalidToken
from auth_core.models import Principal
from auth_core.service import AuthCore, CallInfo
from tests.conftest import REDIS_URL
from tests.gateway.test_admin_cli import auth_core, gateway_cli
from tests.gateway.test_replicas import until_subscribed
from tests.gateway.test_tenant_flows import (
    INTERNAL,
    INTERNAL_VALIDATE,
    INTERNAL_VALIDATE_KEY,
    Site,
    assert_problem,
    elsewhere,
    eventually,
    forwarded,
    other_checksum,
    refused,
    shipped_routes,
    signed_context,
    site,
    site_with,
)
from tests.support import Upstream, auth_settings, quiet_settings, received_headers, two_gateways

__all__ = ["elsewhere", "site", "site_with"]  # fixtures

SERVICE_TOKENS = "/api/v1/service-tokens"
TOKEN_FORMAT = re.compile(r"gws_[0-9A-Za-z]{38}")


def service(secret: str) -> dict[str, str]:
    return {"Authorization": f"Service {secret}"}


async def create(site: Site, admin: str, name: str) -> dict[str, Any]:
    answer = await site.call("POST", SERVICE_TOKENS, token=admin, body={"name": name})
    assert answer.status == 201, answer.body
    assert answer.headers["Cache-Control"] == "no-store"
    made: dict[str, Any] = answer.json()
    return made


async def listed(site: Site, admin: str) -> list[dict[str, Any]]:
    answer = await site.call("GET", SERVICE_TOKENS, token=admin)
    assert answer.status == 200, answer.body
    tokens: list[dict[str, Any]] = answer.json()["service_tokens"]
    return tokens


async def test_admin_creates_lists_and_revokes_service_tokens(site: Site) -> None:
    admin = await site.admin()
    made = await create(site, admin, "billing")
    secret = made["token"]
    assert TOKEN_FORMAT.fullmatch(secret), secret
    assert credentials.well_formed(secret, "gws_")
    assert made["id"].startswith("svc_")
    assert (made["name"], made["prefix"], made["revoked_at"]) == ("billing", secret[:12], None)
    other = await create(site, admin, "reports")
    assert other["token"] != secret

    # Listed, never with the secret.
    tokens = await listed(site, admin)
    assert [(token["id"], token["name"]) for token in tokens] == [
        (made["id"], "billing"),
        (other["id"], "reports"),
    ]
    assert all("token" not in token for token in tokens)
    listing = (await site.call("GET", SERVICE_TOKENS, token=admin)).body.decode()
    assert secret not in listing
    assert secret[12:] not in listing

    # It opens an `auth: service` route; the upstream learns which token, and no user.
    _, seen = await forwarded(site, f"{INTERNAL}/jobs", headers=service(secret))
    headers = received_headers(seen)
    assert headers["x-auth-method"] == ["service"]
    assert headers["x-credential-id"] == [made["id"]]
    for name in ("x-user-id", "x-user-roles", "x-user-email", "x-tenant-id", "x-session-id"):
        assert name not in headers, name
    context = signed_context(site, seen)
    assert (context.auth_method, context.credential_id, context.user_id) == (
        "service",
        made["id"],
        None,
    )
    # And the internal endpoints.
    verdict = await site.service(INTERNAL_VALIDATE, {"token": "not-a-token"}, secret)
    assert verdict.status == 200, verdict.body
    assert verdict.json()["valid"] is False
    await site.core.flush_usage()
    used = {token["id"]: token["last_used_at"] for token in await listed(site, admin)}
    assert used[made["id"]] is not None
    assert used[other["id"]] is None

    # Revoked: refused at once, on the route and the internal endpoints; the other still works.
    gone = await site.call("DELETE", f"{SERVICE_TOKENS}/{made['id']}", token=admin)
    assert gone.status == 204, gone.body
    await refused(site, f"{INTERNAL}/jobs", 401, "invalid_token", headers=service(secret))
    for path, body in ((INTERNAL_VALIDATE, {"token": "x"}), (INTERNAL_VALIDATE_KEY, {})):
        answer = await site.call("POST", path, body=body, headers=service(secret))
        assert_problem(answer, 401, "invalid_token")
    await forwarded(site, f"{INTERNAL}/jobs", headers=service(other["token"]))
    revoked_at = {token["id"]: token["revoked_at"] for token in await listed(site, admin)}
    assert revoked_at[made["id"]] is not None
    assert revoked_at[other["id"]] is None
    # Revoking again changes nothing; an unknown id is 404.
    again = await site.call("DELETE", f"{SERVICE_TOKENS}/{made['id']}", token=admin)
    assert again.status == 204, again.body
    missing = await site.call("DELETE", f"{SERVICE_TOKENS}/svc_0000", token=admin)
    assert_problem(missing, 404, "not_found")

    # A live token's name is taken; a revoked token's name can go to its successor.
    taken = await site.call("POST", SERVICE_TOKENS, token=admin, body={"name": "reports"})
    assert_problem(taken, 409, "conflict")
    successor = await create(site, admin, "billing")
    await forwarded(site, f"{INTERNAL}/jobs", headers=service(successor["token"]))

    entries = await site.audit(admin)
    events = [(entry["event"], entry["outcome"]) for entry in entries]
    assert events.count(("service_token_create", "success")) == 3
    assert events.count(("service_token_revoke", "success")) == 1  # the second changed nothing
    refusals = [entry for entry in entries if entry["event"] == "service_token"]
    assert {entry["detail"]["reason"] for entry in refusals} == {"revoked"}
    assert {entry["detail"]["service_token_id"] for entry in refusals} == {made["id"]}
    everything = json.dumps(entries)
    for token in (secret, other["token"], successor["token"]):
        assert token not in everything


async def test_the_database_holds_hashes_only(site: Site) -> None:
    admin = await site.admin()
    made = await create(site, admin, "search")
    secret = made["token"]
    database = site.core.db
    assert database is not None
    rows = await database.fetch("SELECT * FROM service_tokens")
    assert len(rows) == 1
    row = dict(rows[0])
    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert row["prefix"] == secret[:12]
    stored = json.dumps(row, default=str)
    assert secret not in stored
    assert secret[12:] not in stored


async def test_only_admins_manage_service_tokens(site: Site) -> None:
    admin = await site.admin()
    await site.add_user("kim@example.com")
    user = (await site.login("kim@example.com"))["access_token"]
    made = await create(site, admin, "billing")
    for method, path, body in (
        ("POST", SERVICE_TOKENS, {"name": "mine"}),
        ("GET", SERVICE_TOKENS, None),
        ("DELETE", f"{SERVICE_TOKENS}/{made['id']}", None),
    ):
        assert_problem(
            await site.call(method, path, token=user, body=body), 403, "insufficient_role"
        )
        assert_problem(await site.call(method, path, body=body), 401, "missing_credentials")
        # A service token manages nothing either.
        answer = await site.call(method, path, body=body, headers=service(made["token"]))
        assert answer.status == 401, answer.body
    assert [token["name"] for token in await listed(site, admin)] == ["billing"]


async def test_bad_names_are_refused(site: Site) -> None:
    admin = await site.admin()
    for body in (
        {},
        {"name": ""},
        {"name": 7},
        {"name": "two words"},
        {"name": "-leading-dash"},
        {"name": "bell\u0007"},
        {"name": "x" * 65},
    ):
        answer = await site.call("POST", SERVICE_TOKENS, token=admin, body=body)
        assert_problem(answer, 400, "invalid_request")
    assert await listed(site, admin) == []


async def test_malformed_tokens_are_refused_without_the_database(site: Site) -> None:
    admin = await site.admin()
    secret = (await create(site, admin, "billing"))["token"]
    await forwarded(site, f"{INTERNAL}/x", headers=service(secret))  # now cached

    database = site.core.db
    assert database is not None
    await database.close()

    malformed = [
        other_checksum(secret),  # a typo in the checksum
        secret[:10] + ("x" if secret[10] != "x" else "y") + secret[11:],  # ... in the body
        secret[:-1],
        secret + "A",
        "gws_" + "!" * 38,
        "gwk_" + secret[4:],  # an API key's prefix
        "gwp_" + secret[4:],  # a PAT's prefix
    ]
    for bad in malformed:
        answer = await refused(site, f"{INTERNAL}/x", 401, "invalid_token", headers=service(bad))
        assert secret not in answer.body.decode()
    # Only a well-formed token needs the database, which is gone.
    unknown = credentials.generate("gws_")
    await refused(site, f"{INTERNAL}/x", 503, "auth_unavailable", headers=service(unknown))
    # The token seen before works from the cache.
    await forwarded(site, f"{INTERNAL}/x", headers=service(secret))


async def test_wrong_service_tokens_lead_to_a_ban(site: Site) -> None:
    """Thirty wrong credentials from one address within ten minutes ban it (docs/authentication.md);
    wrong service tokens count like wrong keys."""
    for _ in range(30):
        wrong = credentials.generate("gws_")
        await refused(site, f"{INTERNAL}/x", 401, "invalid_token", headers=service(wrong))

    async def banned() -> bool:
        answer = await site.call("GET", "/echo/x")
        return answer.status == 429

    await eventually(banned, "the address is banned")
    answer = await site.call("GET", "/echo/x")
    assert_problem(answer, 429, "rate_limited")
    # Another address is not.
    other = await site.call("GET", "/echo/x", source="127.0.0.2")
    assert other.status == 200, other.body


async def test_service_token_life_cycle_from_the_command_line(
    tmp_path: Path, database_url: str
) -> None:
    made = gateway_cli(tmp_path, database_url, "service-token", "create", "billing", "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)
    assert TOKEN_FORMAT.fullmatch(token["token"]), token
    assert token["id"].startswith("svc_")
    assert token["name"] == "billing"

    plain = gateway_cli(tmp_path, database_url, "service-token", "create", "reports")
    assert plain.returncode == 0, plain.stderr
    assert re.search(r"gws_[0-9A-Za-z]{38}", plain.stdout), plain.stdout
    taken = gateway_cli(tmp_path, database_url, "service-token", "create", "billing")
    assert taken.returncode == 1
    assert "billing" in taken.stderr
    assert taken.stdout == ""
    bad = gateway_cli(tmp_path, database_url, "service-token", "create", "two words")
    assert bad.returncode == 1
    assert "name must be" in bad.stderr

    listing = gateway_cli(tmp_path, database_url, "service-token", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    tokens = json.loads(listing.stdout)["service_tokens"]
    assert [entry["name"] for entry in tokens] == ["billing", "reports"]
    assert token["token"] not in listing.stdout
    people = gateway_cli(tmp_path, database_url, "service-token", "list")
    assert token["id"] in people.stdout
    assert token["token"] not in people.stdout

    async with auth_core(tmp_path, database_url) as core:
        assert (await principal(core, token["token"])).credential_id == token["id"]

    revoked = gateway_cli(tmp_path, database_url, "service-token", "revoke", token["id"], "--json")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["revoked_at"] is not None
    unknown = gateway_cli(tmp_path, database_url, "service-token", "revoke", "svc_0000")
    assert unknown.returncode == 1
    assert "no such service token" in unknown.stderr

    async with auth_core(tmp_path, database_url) as core:
        with pytest.raises(InvalidToken, match="has been revoked"):
            await principal(core, token["token"])
        events = [entry["event"] for entry in await core.store.audit.list()]
        assert events.count("service_token_create") == 2
        assert events.count("service_token_revoke") == 1


async def principal(core: AuthCore, secret: str) -> Principal:
    found = core.service_tokens.authenticate(secret, CallInfo())
    return found if isinstance(found, Principal) else await found


async def test_a_revoked_token_is_refused_at_once_by_another_replica(
    tmp_path: Path,
    upstream: Upstream,
    client: ClientSession,
    elsewhere: ClientSession,
    postgres_url: str,
    redis_prefix: str,
) -> None:
    settings = quiet_settings(
        auth=auth_settings(
            tmp_path, database_url=postgres_url, redis_url=REDIS_URL, redis_prefix=redis_prefix
        ),
    )
    table = shipped_routes(upstream)
    async with two_gateways(table, tmp_path, settings) as (first, second):
        one = Site(first, upstream, client, elsewhere)
        two = Site(second, upstream, client, elsewhere)
        admin = await one.admin()
        made = await create(one, admin, "billing")
        # Both replicas have it cached (the second perhaps from the shared tier).
        await forwarded(one, f"{INTERNAL}/x", headers=service(made["token"]))
        await forwarded(two, f"{INTERNAL}/x", headers=service(made["token"]))
        await forwarded(two, f"{INTERNAL}/x", headers=service(made["token"]))
        await until_subscribed(second)

        gone = await one.call("DELETE", f"{SERVICE_TOKENS}/{made['id']}", token=admin)
        assert gone.status == 204, gone.body
        await refused(one, f"{INTERNAL}/x", 401, "invalid_token", headers=service(made["token"]))

        async def refused_by_the_other() -> bool:
            answer = await two.call("GET", f"{INTERNAL}/x", headers=service(made["token"]))
            return answer.status == 401

        await eventually(refused_by_the_other, "the other replica refuses the revoked token")
        answer = await two.call(
            "POST", INTERNAL_VALIDATE, body={"token": "x"}, headers=service(made["token"])
        )
        assert_problem(answer, 401, "invalid_token")
