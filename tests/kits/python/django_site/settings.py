"""A Django + DRF service for the kit's tests, configured from the environment the test
starts it with: GATEWAY_CONTEXT_KEYS, DJANGO_DATABASE (a SQLite file),
GATEWAY_CONTEXT_LOCAL_USER, GATEWAY_CONTEXT_LINK_BY_EMAIL, TEST_MIDDLEWARE (0: the DRF
authentication class alone), TEST_CLOCK_FILE (seconds to move the clock on, read at each
request: how a test makes a signature old without waiting)."""

from __future__ import annotations

import os
import time
from pathlib import Path

SECRET_KEY = "a test site's key, never a real one"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "tests.kits.python.django_site.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "gateway_context_django",
    "tests.kits.python.django_site.accounts",
]
MIDDLEWARE = (
    ["gateway_context_django.middleware.GatewayContextMiddleware"]
    if os.environ.get("TEST_MIDDLEWARE", "1") == "1"
    else []
)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DATABASE", ":memory:"),
    }
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["gateway_context_django.drf.GatewayContextAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "gateway_context_django.drf.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
GATEWAY_CONTEXT_KEYS = os.environ.get("GATEWAY_CONTEXT_KEYS", "")
GATEWAY_CONTEXT_AUDIENCE = "billing"
GATEWAY_CONTEXT_LOCAL_USER = os.environ.get("GATEWAY_CONTEXT_LOCAL_USER", "off")
GATEWAY_CONTEXT_LOCAL_USER_FIELD = "auth_user_id"
GATEWAY_CONTEXT_LINK_BY_EMAIL = os.environ.get("GATEWAY_CONTEXT_LINK_BY_EMAIL") == "1"
GATEWAY_CONTEXT_EXEMPT_PATHS = ["/healthz"]
PASSWORD_HASHERS = [
    "tests.kits.python.django_site.hashers.FastPBKDF2PasswordHasher",
    "tests.kits.python.django_site.hashers.FastArgon2PasswordHasher",
]


def _clock() -> float:
    moved = os.environ.get("TEST_CLOCK_FILE")
    offset = float(Path(moved).read_text() or 0) if moved and Path(moved).exists() else 0.0
    return time.time() + offset


GATEWAY_CONTEXT_CLOCK = _clock
