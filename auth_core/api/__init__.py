"""The auth core's HTTP API, served in-process by the gateway (docs/authentication.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auth_core.api import (
    auth_endpoints,
    openapi,
    sdk_endpoints,
    service_token_endpoints,
    tenant_endpoints,
    token_endpoints,
    users_endpoints,
)
from auth_core.api.router import ApiCall, ApiResponse, AuthApi

if TYPE_CHECKING:
    from auth_core.service import AuthCore

__all__ = ["ApiCall", "ApiResponse", "AuthApi", "build_api"]


def build_api(core: AuthCore) -> AuthApi:
    api = AuthApi(core)
    auth_endpoints.register(api, core)
    users_endpoints.register(api, core)
    tenant_endpoints.register(api, core)
    token_endpoints.register(api, core)
    sdk_endpoints.register(api, core)
    service_token_endpoints.register(api, core)
    openapi.register(api)
    return api
