"""The billing service as an ASGI application: `uvicorn billing_service.asgi:application`."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_service.settings")
application = get_asgi_application()
