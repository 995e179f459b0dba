"""The settings, read once, and the Context of a Django request (under ASGI or WSGI)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from multidict import MultiDict

from gateway.context import Context, parse_keys, verify

LOCAL_USER_MODES = ("off", "find", "create")


@dataclass(frozen=True)
class Settings:
    """GATEWAY_CONTEXT_* from Django's settings, validated."""

    keys: Mapping[str, bytes]
    audience: str
    local_user: str  # off, find or create
    local_user_field: str  # the user model's field that holds the gateway's user id
    link_by_email: bool  # link a local user not linked yet by the caller's verified e-mail
    exempt_paths: frozenset[str]
    clock: Callable[[], float]

    @classmethod
    def load(cls) -> Settings:
        audience = getattr(settings, "GATEWAY_CONTEXT_AUDIENCE", "")
        if not audience or not isinstance(audience, str):
            raise ImproperlyConfigured(
                "GATEWAY_CONTEXT_AUDIENCE must be this service's upstream name in routes.yaml"
            )
        try:
            keys = parse_keys(getattr(settings, "GATEWAY_CONTEXT_KEYS", ""))
        except (ValueError, AttributeError) as exc:
            raise ImproperlyConfigured(
                f"GATEWAY_CONTEXT_KEYS must be the output of `gateway context-key {audience}`"
                f" (kid:<base64url key>, comma-separated): {exc}"
            ) from None
        local_user = getattr(settings, "GATEWAY_CONTEXT_LOCAL_USER", "off")
        if local_user not in LOCAL_USER_MODES:
            raise ImproperlyConfigured(
                f"GATEWAY_CONTEXT_LOCAL_USER must be one of {', '.join(LOCAL_USER_MODES)}"
            )
        return cls(
            keys=keys,
            audience=audience,
            local_user=local_user,
            local_user_field=getattr(settings, "GATEWAY_CONTEXT_LOCAL_USER_FIELD", "username"),
            link_by_email=bool(getattr(settings, "GATEWAY_CONTEXT_LINK_BY_EMAIL", False)),
            exempt_paths=frozenset(getattr(settings, "GATEWAY_CONTEXT_EXEMPT_PATHS", ())),
            clock=getattr(settings, "GATEWAY_CONTEXT_CLOCK", time.time),
        )


def request_target(request: Any) -> str:
    """The path with its query exactly as the gateway signed it: not Django's `path`, which
    is percent-decoded."""
    scope = getattr(request, "scope", None)
    if scope is not None:  # ASGI
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else request.path
        query = scope.get("query_string", b"")
        return f"{path}?{query.decode('latin-1')}" if query else path
    meta = request.META
    # WSGI has no raw path in PEP 3333; gunicorn sets RAW_URI, uWSGI and mod_wsgi REQUEST_URI.
    # Without either, Django's re-escaped path is the best guess (exact for paths the gateway
    # normalises: unreserved characters plain, the rest escaped in upper-case hex).
    raw_uri = meta.get("RAW_URI") or meta.get("REQUEST_URI")
    return str(raw_uri) if raw_uri else str(request.get_full_path())


def request_headers(request: Any) -> MultiDict[str]:
    """The request's headers as received, repeats kept where the server hands them over."""
    scope = getattr(request, "scope", None)
    if scope is not None:  # ASGI: the raw pairs, so a signed header sent twice is refused
        return MultiDict(
            (name.decode("latin-1"), value.decode("utf-8", "replace"))
            for name, value in scope["headers"]
        )
    # WSGI: META holds one value a name, the server having joined repeats with commas; a
    # joined signed value is not what was signed, so it is refused all the same. Values are
    # Latin-1 decoded bytes (PEP 3333); the gateway sends UTF-8.
    headers: MultiDict[str] = MultiDict()
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            name = key[5:].replace("_", "-").lower()
            headers.add(name, value.encode("latin-1", "replace").decode("utf-8", "replace"))
    return headers


def context_of(request: Any, config: Settings) -> Context:
    """The verified Context of a Django request; ContextError if it has none."""
    return verify(
        config.keys,
        config.audience,
        request.method,
        request_target(request),
        request_headers(request),
        config.clock(),
    )


@functools.cache
def current() -> Settings:
    """The settings, loaded once (again after a test's override_settings)."""
    return Settings.load()


def _reload(*, setting: str, **_: Any) -> None:
    if setting.startswith("GATEWAY_CONTEXT_"):
        current.cache_clear()


setting_changed.connect(_reload)
