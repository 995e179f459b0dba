"""What the gateway serves itself, documented beside the auth core's API: the forwardAuth
endpoint and the operational endpoints (/live, /health, /ready, /metrics)."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from auth_core import headers as h
from auth_core.api.schemas import ERROR, STRINGS, obj, string

PROBLEM = {"application/problem+json": {"schema": ERROR}}


def problem(description: str) -> dict[str, Any]:
    """A refusal: problem+json (RFC 9457)."""
    return {"description": description, "content": PROBLEM}


def forward_auth(upstreams: Collection[str]) -> dict[str, Any]:
    """Served by the gateway itself (it signs context headers), documented with the rest."""
    return {
        "get": {
            "summary": "forwardAuth for Traefik, nginx auth_request and Caddy forward_auth: 200 "
            "with the signed context headers, or 401/403 problem+json",
            "operationId": "get_api_v1_auth_validate",
            "security": [{"bearer": []}, {"apiKey": []}],
            "description": "Only for the proxies of GATEWAY_FORWARD_AUTH_CLIENTS (by TCP peer). "
            "A request with no credential of its own may carry the login page's session cookie "
            "(__Secure-gw_session; X-Auth-Method: cookie).",
            "parameters": [
                {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
                for name in (
                    h.X_FORWARDED_METHOD,
                    h.X_FORWARDED_URI,
                    h.X_FORWARDED_FOR,
                    h.X_FORWARDED_PROTO,
                    h.X_FORWARDED_HOST,
                    h.ORIGIN,
                )
            ]
            + [
                {
                    "name": "aud",
                    "in": "query",
                    "required": False,
                    "description": "the upstream of routes.yaml whose key signs (default: the "
                    "audience forward_auth)",
                    "schema": {"type": "string", "enum": sorted(upstreams)},
                },
                {
                    "name": "login",
                    "in": "query",
                    "required": False,
                    "description": "`redirect` (any other value: none): a browser "
                    "(Accept: text/html) without a credential "
                    "or session is answered 303 to the login page, with X-Forwarded-Proto, -Host "
                    "and -Uri as its return URL (for Traefik; nginx auth_request takes no 303)",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": "valid; context headers X-User-Id, X-Gateway-Signature, ..."
                },
                "303": {"description": "with ?login=redirect: to the login page"},
                "400": {
                    "description": "aud is not an upstream, or is given twice (invalid_request)",
                    "content": PROBLEM,
                },
                "401": {"description": "no or bad credential", "content": PROBLEM},
                "403": {
                    "description": "credential refused here, or the caller is not a listed proxy "
                    "(forward_auth_not_allowed)",
                    "content": PROBLEM,
                },
                "429": {"description": "a limit of the route (rate_limited)", "content": PROBLEM},
                "503": {
                    "description": "the auth core's database is unavailable (auth_unavailable)",
                    "content": PROBLEM,
                },
            },
        }
    }


_ALIVE = {
    "description": "the worker answers",
    "content": {
        "application/json": {
            "schema": obj({"status": {"type": "string", "enum": ["ok"]}}, ["status"])
        }
    },
}
_READINESS = obj(
    {
        "status": {"type": "string", "enum": ["ready", "degraded", "draining", "unavailable"]},
        "routes_sha256": string("SHA-256 of the route table in force"),
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        "down": STRINGS,
    },
    ["status", "routes_sha256", "checks"],
)


def _probe(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "operationId": "get_"
            + re.sub(r"[^a-z]+", "_", summary.split(":")[0].lower()).strip("_"),
            "tags": ["operations"],
            "responses": responses,
        }
    }


# The gateway's own endpoints (gateway/operations.py), answered before the route table.
OPERATIONAL_PATHS: dict[str, dict[str, Any]] = {
    "/live": _probe("Liveness: the worker answers (restart it when it does not)", {"200": _ALIVE}),
    "/health": _probe("Health: the older name of /live", {"200": _ALIVE}),
    "/ready": _probe(
        "Readiness: the database reachable (or within the stale window), the route table "
        "loaded, not draining; Redis alone down is 200 degraded",
        {
            "200": {
                "description": "ready or degraded: send traffic",
                "content": {"application/json": {"schema": _READINESS}},
            },
            "503": {
                "description": "unavailable or draining: send none",
                "content": {"application/json": {"schema": _READINESS}},
            },
        },
    ),
    "/metrics": _probe(
        "Metrics: Prometheus text format, every worker of this host merged",
        {
            "200": {"description": "the metrics", "content": {"text/plain": {"schema": string()}}},
            "403": problem("`ip_not_allowed`: only to the addresses of `metrics_allow`"),
        },
    ),
}
