"""FastAPI dependencies: the caller the gateway vouched for, and the roles a handler needs.

@app.get("/invoices")
async def invoices(caller: Caller) -> ...:          # caller.user_id, caller.roles, ...

@app.delete("/invoices/{id}", dependencies=[require_role("admin")])
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from gateway.context import Context
from gateway_context_asgi.middleware import STATE_KEY, problem


def gateway_context(connection: HTTPConnection) -> Context:
    """The Context GatewayContextMiddleware verified for this request or websocket."""
    context = connection.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(context, Context):
        # A deployment mistake, not a client's: no request may pass unverified.
        raise RuntimeError("GatewayContextMiddleware is not installed in front of this app")
    return context


Caller = Annotated[Context, Depends(gateway_context)]


class MissingRole(HTTPException):
    """The caller has none of the roles a handler needs (403)."""

    def __init__(self, roles: tuple[str, ...]) -> None:
        super().__init__(403, f"this needs one of the roles: {', '.join(roles)}")


def require_role(*roles: str) -> Any:
    """A dependency that answers 403 unless the caller has one of `roles`."""
    if not roles:
        raise ValueError("require_role needs at least one role")

    def check(caller: Caller) -> Context:
        if not any(role in caller.roles for role in roles):
            raise MissingRole(roles)
        return caller

    return Depends(check)


async def _missing_role(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MissingRole)
    return Response(
        problem(403, "insufficient_role", str(exc.detail)),
        status_code=403,
        media_type="application/problem+json",
    )


def problem_responses(app: FastAPI) -> None:
    """Answer MissingRole with problem+json rather than FastAPI's `{"detail": ...}`."""
    app.add_exception_handler(MissingRole, _missing_role)
