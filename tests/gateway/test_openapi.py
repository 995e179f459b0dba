"""`GET /api/v1/openapi.json` through the shipped routes.yaml: a well-formed OpenAPI 3 document
that lists every endpoint of the auth core's API, and nothing the gateway does not route.

The table of operations is built from the API itself (auth_core.api.build_api), so a new
endpoint is a new case here without anyone editing this file.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout

from auth_core.api import AuthApi, build_api
from auth_core.api.openapi import OPENAPI_PATH, VALIDATE_PATH
from auth_core.service import AuthCore
from tests.support import RunningGateway, quiet_settings, running_gateway
from tests.support import auth_settings as auth_settings

SHIPPED_ROUTES = Path(__file__).resolve().parents[2] / "routes.yaml"
TIMEOUT = ClientTimeout(total=60)
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _built_api() -> AuthApi:
    """The API of an auth core started on a throwaway SQLite file (the endpoints are bound to
    the services it builds at start), closed again before any test runs."""

    async def build() -> AuthApi:
        with tempfile.TemporaryDirectory() as directory:
            core = AuthCore(auth_settings(Path(directory)))
            await core.start(follow=False)
            try:
                return build_api(core)
            finally:
                await core.close()

    return asyncio.run(build())


# The API's endpoints, plus what the gateway serves itself: forwardAuth (any method a proxy's
# subrequest keeps) and the operational endpoints.
_API = _built_api()
FORWARD_AUTH = {
    (method, VALIDATE_PATH)
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
}
OPERATIONAL = {("GET", "/live"), ("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics")}
API_OPERATIONS = sorted({(endpoint.method, endpoint.path) for endpoint in _API.endpoints})
OPERATIONS = sorted(set(API_OPERATIONS) | FORWARD_AUTH | OPERATIONAL)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """The gateway on the shipped routes.yaml (SQLite)."""
    settings = quiet_settings(auth=auth_settings(tmp_path))
    async with running_gateway(SHIPPED_ROUTES.read_text(), tmp_path, settings) as running:
        yield running


async def fetch_document(gateway: RunningGateway, client: ClientSession) -> dict[str, Any]:
    async with client.get(gateway.url + OPENAPI_PATH, timeout=TIMEOUT) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        document: dict[str, Any] = json.loads(await response.read())
    return document


async def test_document_is_openapi_3(gateway: RunningGateway, client: ClientSession) -> None:
    document = await fetch_document(gateway, client)
    assert re.fullmatch(r"3\.\d+\.\d+", document["openapi"])
    assert isinstance(document["info"]["title"], str)
    assert document["info"]["title"]
    assert isinstance(document["info"]["version"], str)
    assert document["paths"]
    schemes = document.get("components", {}).get("securitySchemes", {})
    operation_ids = []
    for path, item in document["paths"].items():
        assert path.startswith("/"), path
        assert item
        assert set(item) <= HTTP_METHODS, path
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert operation["responses"], where
            for status in operation["responses"]:
                assert status == "default" or re.fullmatch(r"[1-5]\d\d", status), where
            operation_ids.append(operation["operationId"])
            # Every {parameter} of the path is declared as a required path parameter.
            declared = {
                parameter["name"]
                for parameter in operation.get("parameters", [])
                if parameter["in"] == "path" and parameter["required"] is True
            }
            assert declared == set(re.findall(r"\{([^}]+)\}", path)), where
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(schemes), where
    assert len(operation_ids) == len(set(operation_ids)), "operationId must be unique"
    assert "get" in document["paths"][VALIDATE_PATH]


async def test_document_lists_every_endpoint(
    gateway: RunningGateway, client: ClientSession
) -> None:
    document = await fetch_document(gateway, client)
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert listed == set(OPERATIONS)
    # The table above is the running gateway's too.
    served = gateway.worker.gateway
    assert served is not None
    endpoints = {(endpoint.method, endpoint.path) for endpoint in served.builtin.api.endpoints}
    assert endpoints | FORWARD_AUTH | OPERATIONAL == set(OPERATIONS)


ROUTED = sorted(set(API_OPERATIONS) | {("GET", VALIDATE_PATH)})


@pytest.mark.parametrize(("method", "path"), ROUTED, ids=[f"{m} {p}" for m, p in ROUTED])
async def test_every_documented_operation_is_routed(
    gateway: RunningGateway, client: ClientSession, method: str, path: str
) -> None:
    document = await fetch_document(gateway, client)
    operation = document["paths"][path][method.lower()]
    target = re.sub(r"\{[^}]+\}", "usr_0000000000000000000a", path)
    target = target.replace("/bans/usr_0000000000000000000a", "/bans/192.0.2.1")
    body = {} if "requestBody" in operation else None
    async with client.request(method, gateway.url + target, json=body, timeout=TIMEOUT) as answer:
        status = answer.status
        text = await answer.read()
    assert status not in (404, 405), text
    if "security" in operation:
        # No credential was sent: a protected operation says so, and nothing else.
        assert status == 401, text
        assert json.loads(text)["error"] == "missing_credentials"
    else:
        assert status in (200, 201, 202, 204, 400, 422), text


DOCUMENTED_REFUSALS = [
    # (method, path, status, error code the description names)
    ("PATCH", "/api/v1/users/{user_id}", "409", "last_admin"),
    ("DELETE", "/api/v1/users/{user_id}", "409", "last_admin"),
    ("POST", "/api/v1/auth/login", "403", "email_not_verified"),
    ("POST", "/api/v1/auth/login", "429", "rate_limited"),
    ("POST", "/api/v1/auth/login", "403", "csrf_refused"),
    ("POST", "/api/v1/auth/login", "415", "application/json"),
    ("POST", "/api/v1/auth/signup", "403", "csrf_refused"),
    ("POST", "/api/v1/auth/signup", "415", "application/json"),
    ("POST", "/api/v1/auth/refresh", "403", "email_not_verified"),
    ("POST", "/api/v1/auth/refresh", "403", "csrf_refused"),
    ("POST", "/api/v1/auth/refresh", "401", "missing_credentials"),
    ("POST", "/api/v1/auth/logout", "403", "csrf_refused"),
]


@pytest.mark.parametrize(("method", "path", "status", "code"), DOCUMENTED_REFUSALS)
async def test_refusals_of_their_own_are_documented(
    gateway: RunningGateway, client: ClientSession, method: str, path: str, status: str, code: str
) -> None:
    document = await fetch_document(gateway, client)
    response = document["paths"][path][method.lower()]["responses"][status]
    assert code in response["description"]
    assert "application/problem+json" in response["content"]


async def test_the_session_cookie_is_documented(
    gateway: RunningGateway, client: ClientSession
) -> None:
    """GATEWAY_SESSION_COOKIES: the cookie is a security scheme of its own, logout takes it
    instead of a bearer token, and login and refresh say the refresh token moves into it."""
    document = await fetch_document(gateway, client)
    scheme = document["components"]["securitySchemes"]["sessionCookie"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == (
        "apiKey",
        "cookie",
        "__Secure-gateway-refresh",
    )
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Max-Age=0", "csrf_refused"):
        assert attribute in scheme["description"]
    paths = document["paths"]
    assert paths["/api/v1/auth/logout"]["post"]["security"] == [
        {"bearer": []},
        {"sessionCookie": []},
    ]
    for path in ("/api/v1/auth/login", "/api/v1/auth/refresh"):
        assert "GATEWAY_SESSION_COOKIES" in paths[path]["post"]["summary"]
    pair = paths["/api/v1/auth/login"]["post"]["responses"]["200"]["content"]
    assert "refresh_token" not in pair["application/json"]["schema"]["required"]
