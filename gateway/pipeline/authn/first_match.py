"""`auth: any`: authenticators asked in order, the first responsible for the request answering
for it (as ORY Oathkeeper runs a rule's authenticators); forwardAuth takes any kind the same way
(gateway/forward_auth.py)."""

from __future__ import annotations

from collections.abc import Sequence

from auth_core.service import AuthCore
from gateway.pipeline.authn.api_key import ApiKeyAuth
from gateway.pipeline.authn.base import Authenticator, AuthnResult, NotResponsible
from gateway.pipeline.authn.jwt import JwtAuth
from gateway.pipeline.authn.pat import PatAuth
from gateway.pipeline.exchange import Exchange


class FirstMatch(Authenticator):
    """The first of `authenticators` responsible for a request answers for it; `needed` is the
    detail of the 401 missing_credentials when none is."""

    def __init__(self, authenticators: Sequence[Authenticator], needed: str) -> None:
        self.authenticators = tuple(authenticators)
        self.not_mine = NotResponsible(needed)

    def authenticate(self, exchange: Exchange) -> AuthnResult:
        for authenticator in self.authenticators:
            result = authenticator.authenticate(exchange)
            if not isinstance(result, NotResponsible):
                return result
        return self.not_mine


def any_credential(core: AuthCore) -> FirstMatch:
    """Whichever of an API key, a PAT or a JWT the request carries (docs/routes.md)."""
    # The order is what makes the kinds' claims exclusive. An API key first: `X-API-Key` names
    # its kind outright (with a bearer token beside it, the key is what counts), and a bearer
    # `gwk_` token is a key. A PAT next: a bearer `gwp_` token only (prefixed_only), or, while
    # imported tokens of another backend's format are accepted, one without a dot. The JWT
    # last, because it claims every other bearer token (a token that is no access token is
    # refused as invalid_token), and a JWT never starts with gwk_ or gwp_ (its first part is
    # base64url JSON, `eyJ`) and always has two dots.
    return FirstMatch(
        (ApiKeyAuth(core), PatAuth(core, prefixed_only=True), JwtAuth(core)),
        "a credential is needed (Authorization: Bearer ..., or X-API-Key)",
    )
