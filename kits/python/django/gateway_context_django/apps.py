"""The Django app: installed for its management command (export_gateway_users)."""

from __future__ import annotations

from django.apps import AppConfig


class GatewayContextConfig(AppConfig):
    """gateway_context_django, labelled `gateway_context`."""

    name = "gateway_context_django"
    label = "gateway_context"
    verbose_name = "Gateway context"
