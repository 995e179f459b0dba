"""The Django middleware: a request without a context signed for this service is answered
401 problem+json; otherwise `request.gateway` is its Context and `request.user` the caller.

Put it where django.contrib.auth's AuthenticationMiddleware would be (or after it: it sets
request.user, and a later AuthenticationMiddleware would set it back to the session's user)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.context import ContextError
from gateway_context_django.problems import (
    INVALID_CONTEXT,
    NO_LOCAL_USER,
    WWW_AUTHENTICATE,
    challenge,
    problem_response,
)
from gateway_context_django.users import NoLocalUser, user_for
from gateway_context_django.verify import context_of, current


class GatewayContextMiddleware:
    """Verifies every request's context (GATEWAY_CONTEXT_* settings)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        current()  # a bad setting stops the start-up, not the first request

    def __call__(self, request: Any) -> Any:
        config = current()
        if request.path_info in config.exempt_paths:
            return self.get_response(request)
        try:
            context = context_of(request, config)
        except ContextError as exc:
            headers = {WWW_AUTHENTICATE: challenge(config.audience)}
            return problem_response(401, INVALID_CONTEXT, str(exc), headers)
        request.gateway = context
        try:
            request.user = request.gateway_user = user_for(context, config)
        except NoLocalUser as exc:
            return problem_response(403, NO_LOCAL_USER, str(exc))
        return self.get_response(request)
