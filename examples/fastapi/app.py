"""A billing service behind the gateway, in FastAPI (examples/fastapi/README.md).

It never sees a password or a token: the gateway authenticates the caller and signs who it
is; GatewayContextMiddleware checks that signature on every request and websocket.
"""

from __future__ import annotations

import os
from itertools import count

from fastapi import FastAPI
from gateway_context_asgi import GatewayContextMiddleware
from gateway_context_asgi.dependencies import Caller, problem_responses, require_role
from pydantic import BaseModel

from gateway.context import parse_keys

AUDIENCE = os.environ.get("GATEWAY_CONTEXT_AUDIENCE", "billing")  # the upstream's name
KEYS = os.environ.get("GATEWAY_CONTEXT_KEYS", "")
if not KEYS:
    raise SystemExit(f"set GATEWAY_CONTEXT_KEYS to the output of: gateway context-key {AUDIENCE}")

app = FastAPI(title="billing")
app.add_middleware(
    GatewayContextMiddleware,
    keys=parse_keys(KEYS),  # parsed here: a wrong value stops the start, not a request
    audience=AUDIENCE,
    exempt_paths=["/healthz"],  # for the orchestrator's probe, which has no gateway
)
problem_responses(app)

INVOICES: dict[int, dict[str, object]] = {}
NUMBERS = count(1)


class NewInvoice(BaseModel):
    amount_cents: int
    customer: str


@app.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/invoices")
async def my_invoices(caller: Caller) -> dict[str, object]:
    """The caller's invoices, and who the gateway says the caller is."""
    mine = [invoice for invoice in INVOICES.values() if invoice["owner"] == caller.user_id]
    return {
        "caller": {"user_id": caller.user_id, "email": caller.email, "roles": caller.roles},
        "invoices": mine,
    }


@app.post("/invoices", status_code=201, dependencies=[require_role("billing", "admin")])
async def create_invoice(invoice: NewInvoice, caller: Caller) -> dict[str, object]:
    number = next(NUMBERS)
    INVOICES[number] = {"number": number, "owner": caller.user_id, **invoice.model_dump()}
    return INVOICES[number]


@app.delete("/invoices/{number}", dependencies=[require_role("admin")])
async def delete_invoice(number: int) -> dict[str, int]:
    INVOICES.pop(number, None)
    return {"deleted": number}
