"""The test site as an ASGI application (served by uvicorn in the tests)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.kits.python.django_site.settings")
application = get_asgi_application()
