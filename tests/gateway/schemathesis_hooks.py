"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in the run of test_openapi_fuzz: every request
carries an admin's access token and a tenant's API key, so that it reaches past 401.

The fuzzer may end the session it holds (logout, revoke-sessions): the test hands over a few
admin sessions, and on a 401 the next one still alive is taken."""

from __future__ import annotations

import http.client
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

import schemathesis

_CREDENTIALS = json.loads(os.environ["GATEWAY_FUZZ_CREDENTIALS"])


def _alive(token: str) -> bool:
    where = urlsplit(_CREDENTIALS["url"])
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
    try:
        connection.request("GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        return connection.getresponse().status == 200
    finally:
        connection.close()


@schemathesis.auth(refresh_interval=None, retry_on=[401])
class AdminAndApiKey:
    def __init__(self) -> None:
        self.spent = 0

    def get(self, case: Any, ctx: Any) -> str | None:
        tokens = _CREDENTIALS["admin_tokens"]
        while self.spent < len(tokens):
            if _alive(tokens[self.spent]):
                return str(tokens[self.spent])
            self.spent += 1
        return None

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
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
