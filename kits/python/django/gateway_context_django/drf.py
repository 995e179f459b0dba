"""Django REST Framework: an authentication class that takes the caller from the gateway's
context, a permission class for the gateway's roles, and problem+json errors.

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "gateway_context_django.drf.GatewayContextAuthentication"
        ],
        "EXCEPTION_HANDLER": "gateway_context_django.drf.problem_exception_handler",
    }

    class InvoiceViewSet(viewsets.ModelViewSet):
        permission_classes = [HasRole("admin") | HasRole("billing")]
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpResponse
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotFound, PermissionDenied
from rest_framework.permissions import BasePermission

from gateway.context import Context, ContextError
from gateway_context_django.problems import (
    INVALID_CONTEXT,
    NO_LOCAL_USER,
    WWW_AUTHENTICATE,
    challenge,
    problem_response,
)
from gateway_context_django.users import NoLocalUser, user_for
from gateway_context_django.verify import context_of, current


class GatewayContextAuthentication(BaseAuthentication):
    """`request.user` from the gateway's context, `request.auth` the Context itself. Uses
    what GatewayContextMiddleware verified when it runs; verifies the request itself when it
    does not. A request with no valid context is refused (401), not left anonymous: it did
    not come through the gateway."""

    def authenticate(self, request: Any) -> tuple[Any, Context] | None:
        django_request = request._request
        context = getattr(django_request, "gateway", None)
        user = getattr(django_request, "gateway_user", None)
        if not isinstance(context, Context):
            try:
                context = context_of(django_request, current())
            except ContextError as exc:
                raise AuthenticationFailed(str(exc), code=INVALID_CONTEXT) from None
            django_request.gateway = context
            user = None
        if user is None:
            try:
                user = user_for(context, current())
            except NoLocalUser as exc:
                raise PermissionDenied(str(exc), code=NO_LOCAL_USER) from None
        if not user.is_authenticated:
            return None  # a public route: anonymous, and permissions decide
        return user, context

    def authenticate_header(self, request: Any) -> str:
        return challenge(current().audience)


def roles_of(request: Any) -> frozenset[str]:
    """The gateway's roles of the caller of a DRF (or Django) request."""
    context = request.auth if isinstance(request.auth, Context) else None
    context = context or getattr(request, "gateway", None)
    return frozenset(context.roles) if isinstance(context, Context) else frozenset()


def HasRole(*roles: str) -> type[BasePermission]:
    """A permission class that lets through callers with one of `roles` (the gateway's
    X-User-Roles): `permission_classes = [HasRole("admin")]`; combine with | and &."""
    if not roles:
        raise ValueError("HasRole needs at least one role")
    needed = frozenset(roles)

    class _HasRole(BasePermission):
        message = f"this needs one of the roles: {', '.join(roles)}"
        code = "insufficient_role"

        def has_permission(self, request: Any, view: Any) -> bool:
            return bool(needed & roles_of(request))

    _HasRole.__name__ = _HasRole.__qualname__ = f"HasRole({', '.join(map(repr, roles))})"
    return _HasRole


# The headers of DRF's answer that the problem+json one keeps.
_KEPT = (WWW_AUTHENTICATE, "Retry-After", "Allow")


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """DRF's exception handler, answering problem+json: `error` is DRF's code of the error
    (`invalid_context`, `not_authenticated`, `insufficient_role`, `not_found`, `invalid`...);
    a validation error's fields go in `errors`."""
    # Imported here: rest_framework.views reads DEFAULT_AUTHENTICATION_CLASSES when imported,
    # which names this module's class, so importing it above would be an import circle.
    from rest_framework.views import exception_handler

    # As DRF's handler does, so that the code is DRF's (not_found, permission_denied).
    if isinstance(exc, Http404):
        exc = NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    codes = exc.get_codes() if hasattr(exc, "get_codes") else None
    if isinstance(data, dict) and set(data) == {"detail"}:
        detail, code = (
            str(data["detail"]),
            codes.get("detail") if isinstance(codes, dict) else codes,
        )
        extra = None
    else:
        detail, code, extra = "the request is not valid", "invalid", data
    headers = {name: response[name] for name in _KEPT if response.has_header(name)}
    answer = problem_response(response.status_code, str(code or "error"), detail, headers)
    if extra is not None:
        body = json.loads(answer.content)
        body["errors"] = extra
        answer.content = json.dumps(body)
    return answer
