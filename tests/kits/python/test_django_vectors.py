"""The shared vectors (kits/vectors/context-v2.json) through the Django kit in a real Django
with DRF, called as servers call it: through Django's ASGI handler (the raw header pairs,
repeats kept) and its WSGI handler (META, repeats joined with commas as WSGI servers join
them, the raw target in RAW_URI as gunicorn sets it); each time with the middleware and the
DRF authentication class, and with the authentication class alone.

Each valid case reaches the view with its context as request.gateway / request.auth; each
other case is answered 401 problem+json and never reaches it."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

import django
import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import re_path

from tests.kits.python.support import vectors

VECTORS = vectors()
REACHED: list[str] = []
MIDDLEWARE = "gateway_context_django.middleware.GatewayContextMiddleware"


def configure() -> None:
    if settings.configured:
        return
    from tests.kits.python.django_site import settings as site

    values = {name: getattr(site, name) for name in dir(site) if name.isupper()}
    values.update(
        ROOT_URLCONF=__name__,
        LOGGING_CONFIG=None,  # the rest of the suite's logging is not Django's to set
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        GATEWAY_CONTEXT_KEYS=VECTORS["keys"],
        GATEWAY_CONTEXT_CLOCK=lambda: float(VECTORS["now"]),
        REST_FRAMEWORK={
            **site.REST_FRAMEWORK,
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
        },
    )
    settings.configure(**values)
    django.setup()


configure()

from rest_framework.request import Request  # noqa: E402  (needs Django configured)
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402


class Anything(APIView):
    def get(self, request: Request) -> Response:
        REACHED.append(request.method or "")
        context = request.gateway
        assert request.auth in (context, None)
        return Response({**fields(context), "roles": list(context.roles)})

    post = delete = get


def fields(context: Any) -> dict[str, Any]:
    names = ("auth_method", "request_id", "user_id", "email", "email_verified", "tenant_id")
    return {
        name: getattr(context, name)
        for name in (*names, "session_id", "credential_id", "timestamp")
    }


urlpatterns = [re_path(r"^.*$", Anything.as_view())]

CASES = VECTORS["cases"]
IDS = [case["description"][:70] for case in CASES]


@pytest.fixture(params=["middleware", "drf-only"])
def middleware(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    chain = [MIDDLEWARE] if request.param == "middleware" else []
    with override_settings(MIDDLEWARE=chain):
        yield chain


def check(case: dict[str, Any], status: int, headers: dict[str, str], body: bytes) -> None:
    if case["valid"]:
        assert status == 200, body
        assert json.loads(body) == case["context"]
        assert [case["method"]] == REACHED
        return
    assert status == 401, body
    assert headers["content-type"] == "application/problem+json"
    assert headers["www-authenticate"] == 'GatewayContext audience="billing"'
    problem = json.loads(body)
    assert (problem["status"], problem["error"]) == (401, "invalid_context"), problem
    assert problem["title"] == "Unauthorized"
    assert problem["type"] == "urn:gateway:error:invalid_context"
    assert problem["detail"]
    assert REACHED == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_each_vector_through_django_asgi(case: dict[str, Any], middleware: list[str]) -> None:
    from django.core.handlers.asgi import ASGIHandler

    REACHED.clear()
    raw_path, _, query = case["path"].partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": case["method"],
        "scheme": "http",
        "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [
            (name.lower().encode("latin-1"), value.encode("utf-8"))
            for name, value in case["headers"]
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []
    disconnected = asyncio.get_running_loop().create_future()
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Any:
        return messages.pop() if messages else await disconnected

    async def send(message: Any) -> None:
        sent.append(message)

    await ASGIHandler()(scope, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    check(case, start["status"], headers, body)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_vector_through_django_wsgi(case: dict[str, Any], middleware: list[str]) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    REACHED.clear()
    raw_path, _, query = case["path"].partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": case["method"],
        "SCRIPT_NAME": "",
        # PEP 3333: the decoded path's bytes as Latin-1; the raw target as gunicorn gives it.
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": query,
        "RAW_URI": case["path"],
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in case["headers"]:
        key = "HTTP_" + name.upper().replace("-", "_")
        text = value.encode("utf-8").decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    answered: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
        answered.append((int(status.split()[0]), {k.lower(): v for k, v in headers}))

    body = b"".join(WSGIHandler()(environ, start_response))
    check(case, answered[0][0], answered[0][1], body)


def wsgi_environ(case: dict[str, Any]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": case["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(case["path"].partition("?")[0]).decode("latin-1"),
        "QUERY_STRING": case["path"].partition("?")[2],
        "RAW_URI": case["path"],
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
    }
    for name, value in case["headers"]:
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def test_a_caller_without_a_local_user_when_one_is_required() -> None:
    """GATEWAY_CONTEXT_LOCAL_USER = "find": 403 problem+json `no_local_user` until the
    service has a user linked to the caller's id, then the request passes as that user."""
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    [case] = [case for case in CASES if case["description"].startswith("valid: a user signed")]
    assert case["context"]["user_id"] == "usr_01HZX3"
    answered: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
        answered.append((int(status.split()[0]), dict(headers)))

    with override_settings(
        MIDDLEWARE=[MIDDLEWARE],
        GATEWAY_CONTEXT_LOCAL_USER="find",
        GATEWAY_CONTEXT_LOCAL_USER_FIELD="auth_user_id",
    ):
        REACHED.clear()
        body = b"".join(WSGIHandler()(wsgi_environ(case), start_response))
        assert answered[-1][0] == 403, body
        assert answered[-1][1]["Content-Type"] == "application/problem+json"
        problem = json.loads(body)
        assert (problem["error"], problem["detail"]) == (
            "no_local_user",
            "no local account for gateway user usr_01HZX3",
        )
        assert REACHED == []
        ada = get_user_model().objects.create_user("ada", auth_user_id="usr_01HZX3")
        body = b"".join(WSGIHandler()(wsgi_environ(case), start_response))
        assert answered[-1][0] == 200, body
        assert REACHED == ["GET"]
        # Deactivated by the service: refused again, whatever the gateway says.
        ada.is_active = False
        ada.save(update_fields=["is_active"])
        body = b"".join(WSGIHandler()(wsgi_environ(case), start_response))
        assert answered[-1][0] == 403, body
        problem = json.loads(body)
        assert (problem["error"], problem["detail"]) == (
            "no_local_user",
            "the local account of gateway user usr_01HZX3 is inactive",
        )
        assert REACHED == ["GET"]
