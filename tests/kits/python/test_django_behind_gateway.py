"""A real Django + DRF service with the Django kit, served by uvicorn (Django's ASGI handler)
in a process of its own on loopback, behind a real gateway: what the gateway forwards passes,
with request.user built from the context and the roles usable by DRF permission classes;
forged, replayed to another path, expired and other-audience contexts get the service's own
401 problem+json. Then the same with the DRF authentication class alone, and with local Django
users found, linked by verified e-mail, or created by the gateway's user id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from auth_core.service import CallInfo
from tests.kits.python.support import (
    django_environment,
    django_site,
    gateway_settings,
    manage,
    move_clock,
)
from tests.support import FORGED_IDENTITY, Answer, fetch, routes, running_gateway

PASSWORD = "correct horse battery staple"
TABLE = (
    "{name: billing, path: /invoices, upstream: billing, auth: jwt}",
    "{name: plain, path: /plain, upstream: billing, auth: jwt}",
    "{name: public, path: /public, upstream: billing, auth: none}",
    # The same service reached as the upstream `orders`: the gateway signs for orders.
    "{name: orders, path: /orders, upstream: orders, auth: jwt, strip_prefix: true}",
)


def assert_refused(answer: Answer, status: int, code: str, detail: str = "") -> None:
    """The service's own refusal (the gateway's carry a request_id and other codes)."""
    assert answer.status == status, answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"
    problem = answer.json()
    assert (problem["status"], problem["error"]) == (status, code), problem
    assert set(problem) == {"type", "title", "status", "detail", "error"}, problem
    assert detail in problem["detail"], problem
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == 'GatewayContext audience="billing"'


async def test_django_and_drf_behind_the_gateway(client: ClientSession, tmp_path: Path) -> None:
    async with django_site(tmp_path) as url:
        table = routes({"billing": [url], "orders": [url]}, *TABLE)
        async with running_gateway(table, tmp_path, gateway_settings(tmp_path)) as gw:
            core = gw.core
            user = await core.accounts.create(
                "ada@example.com", PASSWORD, roles=("user", "billing"), verified=True
            )
            admin = await core.accounts.create(
                "root@example.com", PASSWORD, roles=("user", "admin"), verified=True
            )
            token = (await core.sessions.open(user, CallInfo())).access_token
            admin_token = (await core.sessions.open(admin, CallInfo())).access_token
            bearer = {"Authorization": f"Bearer {token}"}

            answer = await fetch(client, "GET", gw.url + "/invoices?page=2", headers=bearer)
            assert answer.status == 200, answer.body
            assert answer.json() == {
                "user": "GatewayUser",
                "is_authenticated": True,
                "local_pk": None,
                "username": "ada@example.com",
                "auth_method": "jwt",
                "user_id": user.id,
                "email": "ada@example.com",
                "roles": ["user", "billing"],
            }
            # A plain Django view gets the same from the middleware.
            answer = await fetch(client, "GET", gw.url + "/plain", headers=bearer)
            assert (answer.status, answer.json()["user_id"]) == (200, user.id), answer.body
            # A public route: verified, and nobody in particular.
            answer = await fetch(client, "GET", gw.url + "/public")
            assert answer.status == 200, answer.body
            assert answer.json()["user"] == "AnonymousUser"
            assert answer.json()["auth_method"] == "none"
            # HasRole("admin", "billing-admin"): 403 problem+json, then allowed.
            answer = await fetch(client, "DELETE", gw.url + "/invoices/7", headers=bearer)
            assert_refused(answer, 403, "insufficient_role", "admin, billing-admin")
            admin_bearer = {"Authorization": f"Bearer {admin_token}"}
            answer = await fetch(client, "DELETE", gw.url + "/invoices/7", headers=admin_bearer)
            assert (answer.status, answer.json()) == (200, {"deleted": 7})
            # DRF's other errors, as problem+json by problem_exception_handler.
            answer = await fetch(client, "GET", gw.url + "/invoices/7", headers=admin_bearer)
            assert_refused(answer, 404, "not_found")
            answer = await fetch(client, "PUT", gw.url + "/invoices/7", headers=admin_bearer)
            assert_refused(answer, 405, "method_not_allowed", "PUT")
            answer = await fetch(
                client,
                "POST",
                gw.url + "/invoices/7",
                headers=admin_bearer,
                json={"amount_cents": 0},
            )
            assert answer.status == 400, answer.body
            assert answer.headers["Content-Type"] == "application/problem+json"
            problem = answer.json()
            assert (problem["status"], problem["error"]) == (400, "invalid")
            assert list(problem["errors"]) == ["amount_cents"], problem
            answer = await fetch(
                client,
                "POST",
                gw.url + "/invoices/7",
                headers=admin_bearer,
                json={"amount_cents": 5},
            )
            assert (answer.status, answer.json()) == (201, {"amount_cents": 5})
            # Signed for `orders`: refused by billing's service.
            answer = await fetch(client, "GET", gw.url + "/orders/invoices", headers=bearer)
            assert_refused(answer, 401, "invalid_context", "another audience")

        signed = await signed_headers(client, url, tmp_path)
        answer = await fetch(client, "GET", url + "/invoices", headers=FORGED_IDENTITY)
        assert_refused(answer, 401, "invalid_context")
        answer = await fetch(client, "GET", url + "/invoices")
        assert_refused(answer, 401, "invalid_context", "no gateway signature")
        # Replayed at once to the path it was signed for it passes; to another, no.
        answer = await fetch(client, "GET", url + "/public", headers=signed)
        assert answer.status == 200, answer.body
        answer = await fetch(client, "GET", url + "/plain", headers=signed)
        assert_refused(answer, 401, "invalid_context", "does not match")
        # 61 s later, not even to its own path.
        move_clock(tmp_path, 61)
        answer = await fetch(client, "GET", url + "/public", headers=signed)
        assert_refused(answer, 401, "invalid_context", "too old")


async def signed_headers(client: ClientSession, url: str, directory: Path) -> dict[str, str]:
    """The context headers the gateway signs for `GET /public` to billing (auth: none), as the
    service would receive them, from a gateway of their own."""
    from tests.support import upstream_server

    async with upstream_server() as echo:
        table = routes(
            {"billing": [echo.url]}, "{name: p, path: /public, upstream: billing, auth: none}"
        )
        (directory / "g2").mkdir()
        async with running_gateway(
            table, directory / "g2", gateway_settings(directory / "g2")
        ) as gw:
            answer = await fetch(client, "GET", gw.url + "/public")
            assert answer.status == 200
    names = ("x-gateway-signature", "x-gateway-timestamp", "x-request-id", "x-auth-method")
    return {name: value for name, value in echo.seen[0]["headers"] if name.lower() in names}


async def test_drf_authentication_alone_with_local_users(
    client: ClientSession, tmp_path: Path
) -> None:
    """Without the middleware, GatewayContextAuthentication verifies by itself; local users
    are found by auth_user_id, linked once by a verified e-mail address, or created."""
    variables = {
        "TEST_MIDDLEWARE": "0",
        "GATEWAY_CONTEXT_LOCAL_USER": "create",
        "GATEWAY_CONTEXT_LINK_BY_EMAIL": "1",
    }
    environment = django_environment(tmp_path, **variables)
    manage(environment, "migrate", "--verbosity", "0")
    # Users of the service from before the gateway.
    manage(environment, "shell", "--verbosity", "0", "-c", CREATE_OLD_USERS)
    async with django_site(tmp_path, **variables) as url:
        table = routes({"billing": [url]}, *TABLE[:1])
        async with running_gateway(table, tmp_path, gateway_settings(tmp_path)) as gw:
            core = gw.core
            ada = await core.accounts.create("ada@example.com", PASSWORD, verified=True)
            # Claims bob's address without having proved it: must not get bob's account.
            mallory = await core.accounts.create("bob@example.com", PASSWORD, verified=False)
            new = await core.accounts.create("new@example.com", PASSWORD, verified=True)
            seen: dict[str, Any] = {}
            for person in (ada, mallory, new, ada):
                token = (await core.sessions.open(person, CallInfo())).access_token
                answer = await fetch(
                    client,
                    "GET",
                    gw.url + "/invoices",
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert answer.status == 200, answer.body
                body = answer.json()
                assert (body["user"], body["user_id"]) == ("User", person.id), body
                seen.setdefault(person.email, []).append(body["local_pk"])
        answer = await fetch(client, "GET", url + "/invoices", headers=FORGED_IDENTITY)
        assert_refused(answer, 401, "invalid_context")

    rows = manage(environment, "shell", "--verbosity", "0", "-c", LIST_USERS).stdout.split()
    # ada's old account (pk 1) linked, and the same at her second request; bob's old account
    # (pk 2) left alone; a new account each for mallory and new.
    assert seen == {"ada@example.com": [1, 1], "bob@example.com": [3], "new@example.com": [4]}
    assert rows == [
        f"1:ada:{ada.id}",
        "2:bob:None",
        f"3:{mallory.id}:{mallory.id}",
        f"4:{new.id}:{new.id}",
    ]


CREATE_OLD_USERS = """
from django.contrib.auth import get_user_model
User = get_user_model()
User.objects.create_user("ada", "ada@example.com", "old password")
User.objects.create_user("bob", "bob@example.com", "old password")
"""
LIST_USERS = """
from django.contrib.auth import get_user_model
for user in get_user_model().objects.order_by("pk"):
    print(f"{user.pk}:{user.username}:{user.auth_user_id}")
"""
