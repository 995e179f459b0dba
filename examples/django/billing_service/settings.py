"""Settings of the billing service behind the gateway (examples/django/README.md)."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "only for trying the example out")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "billing_service.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "gateway_context_django",  # for `manage.py export_gateway_users`
    "invoices",
]
# In place of django.contrib.auth's AuthenticationMiddleware: the gateway says who calls.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "gateway_context_django.middleware.GatewayContextMiddleware",
]

# The keys of this service's context signatures (`gateway context-key billing`) and its
# upstream name in the gateway's routes.yaml.
GATEWAY_CONTEXT_KEYS = os.environ.get("GATEWAY_CONTEXT_KEYS", "")
GATEWAY_CONTEXT_AUDIENCE = "billing"
GATEWAY_CONTEXT_EXEMPT_PATHS = ["/healthz"]  # the orchestrator's probe has no gateway

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["gateway_context_django.drf.GatewayContextAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "gateway_context_django.drf.problem_exception_handler",
}
