"""A key per upstream, end to end: the gateway proxies to two real upstreams, `billing` and
`orders`; what billing receives verifies with billing's key alone, and replayed to orders (the
same method and path, within the minute) it is refused, however it is relabelled."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from auth_core.tokens import Keyring
from gateway.context import ContextError, derive_keys, verify
from tests.support import auth_settings, quiet_settings, routes, running_gateway, upstream_server

SECRET = "k1:" + "s" * 40


def received(seen: dict[str, Any]) -> dict[str, str]:
    return dict(seen["headers"])


async def test_a_context_for_billing_is_refused_by_orders(
    client: ClientSession, tmp_path: Path
) -> None:
    settings = quiet_settings()
    settings = dataclasses.replace(
        settings, auth=auth_settings(tmp_path, service_keyring=Keyring.parse(SECRET))
    )
    async with upstream_server() as billing, upstream_server() as orders:
        table = routes(
            {"billing": [billing.url], "orders": [orders.url]},
            "{name: billing, path: /billing, upstream: billing, auth: none}",
            "{name: orders, path: /orders, upstream: orders, auth: none}",
        )
        async with running_gateway(table, tmp_path, settings) as gateway:
            for path in ("/billing/x", "/orders/x"):
                async with client.post(gateway.url + path) as response:
                    assert response.status == 200
    [to_billing], [to_orders] = billing.seen, orders.seen
    billing_keys = derive_keys([("k1", b"s" * 40)], "billing")
    orders_keys = derive_keys([("k1", b"s" * 40)], "orders")
    assert billing_keys != orders_keys

    headers = received(to_billing)
    assert headers["X-Gateway-Signature"].startswith("v2,kid=k1,aud=billing,sig=")
    assert verify(billing_keys, "billing", "POST", "/billing/x", headers).auth_method == "none"
    assert received(to_orders)["X-Gateway-Signature"].startswith("v2,kid=k1,aud=orders,sig=")
    assert (
        verify(orders_keys, "orders", "POST", "/orders/x", received(to_orders)).auth_method
        == "none"
    )

    # Replayed to orders' service, for the path orders' service serves.
    with pytest.raises(ContextError, match="another audience"):
        verify(orders_keys, "orders", "POST", "/billing/x", headers)
    relabelled = {
        **headers,
        "X-Gateway-Signature": headers["X-Gateway-Signature"].replace("aud=billing", "aud=orders"),
    }
    with pytest.raises(ContextError, match="does not match"):
        verify(orders_keys, "orders", "POST", "/billing/x", relabelled)
