"""`auth: pat`: a personal access token, `Authorization: Bearer gwp_...`, acting as its user.
A token seen before is checked from the auth core's cache; only a miss waits for the
database."""

from __future__ import annotations

from typing import Final

from auth_core import credentials
from auth_core.service import AuthCore
from gateway.pipeline.authn.base import (
    Authenticator,
    AuthnResult,
    NotResponsible,
    call_info,
    presented_token,
    settle,
)
from gateway.pipeline.exchange import Exchange

_PREFIX: Final = credentials.PAT_PREFIX
_NOT_MINE: Final = NotResponsible(
    "a personal access token is needed (Authorization: Bearer gwp_...)"
)


class PatAuth(Authenticator):
    """Responsible for a bearer `gwp_` token, and, with `prefixed_only` false (alone on an
    `auth: pat` route), for any bearer token: there a JWT sent where the PAT goes is a bad PAT
    (401 invalid_token), not a missing one. Beside the JWT authenticator (`auth: any`) it
    leaves the tokens without its prefix to that one, except, while tokens of another
    backend's format are configured (GATEWAY_LEGACY_PAT_UNTIL), those without a dot: a JWT
    has two, a legacy token none (auth_core/legacy_pats.py)."""

    def __init__(self, core: AuthCore, *, prefixed_only: bool = False) -> None:
        self.core = core
        self.prefixed_only = prefixed_only
        self.legacy = core.settings.legacy_pat_until is not None

    def authenticate(self, exchange: Exchange) -> AuthnResult:
        token = presented_token(exchange)
        if token is None:
            return _NOT_MINE
        # `legacy` is read only for a token without the prefix (a JWT, under `auth: any`):
        # one attribute more when no legacy tokens are configured.
        if (
            self.prefixed_only
            and not token.startswith(_PREFIX)
            and (not self.legacy or "." in token)
        ):
            return _NOT_MINE
        exchange.auth_method = "pat"
        return settle(exchange, self.core.pats.authenticate(token, lambda: call_info(exchange)))
