"""What schemathesis found (test_openapi_fuzz.py), pinned: the document as strict as the
server, and the server bugs it showed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession

from auth_core.calls import CallInfo
from tests.gateway.test_openapi import SHIPPED_ROUTES, fetch_document
from tests.support import (
    RunningGateway,
    assert_problem,
    auth_settings,
    fetch,
    quiet_settings,
    running_gateway,
)

PASSWORD = "correct horse battery staple"
WHERE = CallInfo(ip="127.0.0.1")


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = quiet_settings(auth=auth_settings(tmp_path))
    async with running_gateway(SHIPPED_ROUTES.read_text(), tmp_path, settings) as running:
        yield running


async def admin_token(gateway: RunningGateway) -> str:
    core = gateway.core
    await core.accounts.create("root@example.com", PASSWORD, roles=("user", "admin"), verified=True)
    return (await core.sessions.login("root@example.com", PASSWORD, WHERE)).access_token


async def test_servers_and_operational_endpoints(
    gateway: RunningGateway, client: ClientSession
) -> None:
    document = await fetch_document(gateway, client)
    assert document["servers"] == [{"url": "/"}]
    for path in ("/live", "/health", "/ready", "/metrics"):
        assert set(document["paths"][path]) == {"get"}, path
    assert set(document["paths"]["/ready"]["get"]["responses"]) == {"200", "503"}
    assert "403" in document["paths"]["/metrics"]["get"]["responses"]


async def test_every_protected_operation_documents_its_refusals(
    gateway: RunningGateway, client: ClientSession
) -> None:
    document = await fetch_document(gateway, client)
    users = document["paths"]["/api/v1/users/{user_id}"]["patch"]
    assert {"400", "401", "403", "404", "409", "413", "429", "503"} <= set(users["responses"])
    assert "default" not in users["responses"]
    assert users["parameters"][0]["schema"]["pattern"] == "^[a-z]+_[0-9a-f]{20}$"
    problem = users["responses"]["401"]["content"]["application/problem+json"]["schema"]
    assert problem["required"] == ["type", "title", "status", "detail", "error", "request_id"]
    # A body with no required field is optional (an absent one reads as {}).
    forgot = document["paths"]["/api/v1/auth/forgot-password"]["post"]["requestBody"]
    assert forgot["required"] is False
    login = document["paths"]["/api/v1/auth/login"]["post"]["requestBody"]
    assert login["required"] is True
    email = login["content"]["application/json"]["schema"]["properties"]["email"]
    assert email["minLength"] == 1
    aud = document["paths"]["/api/v1/auth/validate"]["get"]["parameters"]
    assert [p["schema"]["enum"] for p in aud if p["name"] == "aud"] == [["echo"]]


async def test_a_literal_path_is_not_an_id(gateway: RunningGateway, client: ClientSession) -> None:
    """DELETE /api/v1/tokens/limits was taken for the token "limits": 405, Allow: GET."""
    token = await admin_token(gateway)
    answer = await fetch(
        client,
        "DELETE",
        gateway.url + "/api/v1/tokens/limits",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_problem(answer, 405, "method_not_allowed")
    assert answer.headers["Allow"] == "GET, HEAD"


async def test_a_percent_encoded_ipv6_ban_is_an_address(
    gateway: RunningGateway, client: ClientSession
) -> None:
    token = await admin_token(gateway)
    answer = await fetch(
        client,
        "DELETE",
        gateway.url + "/api/v1/bans/2001%3Adb8%3A%3A1",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_problem(answer, 404, "not_found")  # a valid address, not banned (was 400)


async def test_email_verified_must_be_a_boolean(
    gateway: RunningGateway, client: ClientSession
) -> None:
    token = await admin_token(gateway)
    answer = await fetch(
        client,
        "POST",
        gateway.url + "/api/v1/users",
        json={"email": "a@example.com", "email_verified": {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_problem(answer, 400, "invalid_request")


async def test_rotating_a_rotated_key_is_a_conflict(
    gateway: RunningGateway, client: ClientSession
) -> None:
    token = await admin_token(gateway)
    core = gateway.core
    tenant = await core.tenants.create("acme", [], [], None, WHERE)
    key, _ = await core.keys.create(tenant.id, name="k", actor_id=None, call=WHERE)
    rotate = f"{gateway.url}/api/v1/tenants/{tenant.id}/api-keys/{key.id}/rotate"
    headers = {"Authorization": f"Bearer {token}"}
    first = await fetch(client, "POST", rotate, json={}, headers=headers)
    assert first.status == 201
    again = await fetch(client, "POST", rotate, json={}, headers=headers)
    assert_problem(again, 409, "conflict")  # was 400 for a valid request


async def test_a_malformed_validate_call_is_400_not_a_verdict(
    gateway: RunningGateway, client: ClientSession
) -> None:
    """POST /api/v1/auth/internal/validate without token or api_key was answered 200
    {"valid": false, "error": "invalid_request"}: a caller's bug read as a bad credential."""
    _, secret = await gateway.core.service_tokens.create("svc", actor_id=None, call=WHERE)
    url = gateway.url + "/api/v1/auth/internal/validate"
    headers = {"Authorization": f"Service {secret}"}
    for body in ({}, {"token": ""}, {"api_key": "gwk_x", "token": ""}):
        answer = await fetch(client, "POST", url, json=body, headers=headers)
        assert_problem(answer, 400, "invalid_request")
    verdict = await fetch(client, "POST", url, json={"token": "nonsense"}, headers=headers)
    assert verdict.status == 200
    assert verdict.json()["valid"] is False
