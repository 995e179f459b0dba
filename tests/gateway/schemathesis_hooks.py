"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in the run of test_openapi_fuzz: every request
carries a tenant's API key, and an admin's access token (or, on the internal endpoints, a
service token), so that it reaches past 401.

The fuzzer may end the sessions it holds (logout, revoke-sessions of the admin it finds at
/api/v1/auth/me) or revoke the service token: on a 401 a fresh credential is taken from the
test's dispenser, which makes them in the gateway's process."""

from __future__ import annotations

import http.client
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

import schemathesis

_CREDENTIALS = json.loads(os.environ["GATEWAY_FUZZ_CREDENTIALS"])
_INTERNAL = "/api/v1/auth/internal/"


def _dispensed(kind: str) -> str:
    where = urlsplit(_CREDENTIALS["dispenser"])
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=30)
    try:
        connection.request("POST", f"/{kind}")
        answer = connection.getresponse()
        assert answer.status == 200, answer.status
        return answer.read().decode()
    finally:
        connection.close()


@schemathesis.auth(refresh_interval=None, retry_on=[401])
class AdminAndApiKey:
    def get(self, case: Any, ctx: Any) -> dict[str, str]:
        return {"admin": _dispensed("admin"), "service": _dispensed("service")}

    def set(self, case: Any, data: dict[str, str], ctx: Any) -> None:
        case.headers = case.headers or {}
        if case.path.startswith(_INTERNAL):
            case.headers["Authorization"] = f"Service {data['service']}"
        else:
            case.headers["Authorization"] = f"Bearer {data['admin']}"
        case.headers["X-API-Key"] = _CREDENTIALS["api_key"]


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    """The one rule of the document no static schema can hold: a numeric `expires_at` must be
    to come when the request arrives, and the document's minimum is the moment it was served.
    A valid case whose time has passed meanwhile is moved an hour ahead; invalid ones stay."""
    body = case.body
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    expires = body.get("expires_at") if isinstance(body, dict) else None
    if type(expires) in (int, float) and expires <= time.time() + 60:
        body["expires_at"] = time.time() + 3600
