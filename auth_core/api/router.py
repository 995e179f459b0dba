"""The auth core's HTTP API as plain calls: the gateway hands in an ApiCall (already parsed,
bounded and attributed to a client address) and gets an ApiResponse back, in-process, with no
HTTP hop and without the auth core knowing anything about the gateway's server.

Every endpoint declares who may call it (`public`, `user`, `admin`); the API checks that
itself, whatever auth the route in routes.yaml asks for, so a route misconfigured as
`auth: none` does not open the admin endpoints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from auth_core import headers as h
from auth_core.api.json_body import parse_object
from auth_core.credentials import PAT_PREFIX
from auth_core.errors import (
    InsufficientRole,
    InvalidRequest,
    MethodNotAllowed,
    MissingCredentials,
    NotFound,
    RateLimited,
)
from auth_core.limits import Rate
from auth_core.models import Principal
from auth_core.origins import OriginWhitelist
from auth_core.text import unsafe_text

if TYPE_CHECKING:
    from auth_core.service import AuthCore, CallInfo

PUBLIC, USER, ADMIN = "public", "user", "admin"
TENANT = "tenant"  # a platform admin, or an admin (role tenant_admin) of the path's tenant
API_KEY = "api_key"  # an SDK backend: an API key from an address its whitelists allow
SERVICE = "service"  # an internal service: Authorization: Service gws_...
# A user by bearer token, or (GATEWAY_SESSION_COOKIES) by the session cookie alone, which the
# endpoint itself reads and holds to the CSRF rule (logout).
SESSION = "session"
# A user by bearer token, or by a personal access token of theirs (`Bearer gwp_...`): what a
# tool holding only a PAT may read about itself (its limits, as GitHub's rate-limit endpoint).
USER_OR_PAT = "user_or_pat"
MAX_JSON_BYTES = 64 * 1024


@dataclass
class ApiCall:
    method: str
    path: str
    query: Mapping[str, str]
    header: Callable[[bytes], str | None]  # a request header by lower-case name (B_*)
    body: bytes
    info: CallInfo
    base_url: str
    principal: Principal | None = None  # what the route's authentication found, if any
    params: dict[str, str] = field(default_factory=dict)
    # The caller's checks on a principal the API authenticated itself (Origin, for one):
    # raises to refuse.
    admit: Callable[[Principal], Awaitable[None] | None] | None = None
    # The top-level `origins` of routes.yaml: the whitelist of users without a tenant.
    platform_origins: OriginWhitelist | None = None
    # The upstream names of routes.yaml (the `aud` forwardAuth takes, in the OpenAPI document).
    upstreams: Collection[str] = ()

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; InvalidRequest otherwise."""
        if len(self.body) > MAX_JSON_BYTES:
            raise InvalidRequest("the JSON body is too large")
        return parse_object(self.body)

    @property
    def caller(self) -> Principal:
        assert self.principal is not None, "only for endpoints that need a user"
        return self.principal


@dataclass
class ApiResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body, separators=(",", ":")).encode()


Handler = Callable[[ApiCall], Awaitable[ApiResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # e.g. /api/v1/users/{user_id}
    handler: Handler
    access: str
    summary: str
    status: int = 200
    request: dict[str, Any] | None = None  # JSON schema of the body
    response: dict[str, Any] | None = None  # JSON schema of the answer
    # Query parameters, each with its JSON schema (None: a string without control characters).
    query: tuple[tuple[str, dict[str, Any] | None], ...] = ()
    # A default limit (login, refresh, SDK sessions), per API key on API_KEY endpoints,
    # else per client address; shared by the replicas through Redis.
    rate: Rate | None = None
    # Refusals worth naming in the OpenAPI document: (status, what it says and when).
    errors: tuple[tuple[int, str], ...] = ()
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{([a-z_]+)\}", r"(?P<\1>[^/]+)", self.path)
        object.__setattr__(self, "pattern", re.compile(regex))


class AuthApi:
    """The endpoints, and the one place that decides who may call them."""

    def __init__(self, core: AuthCore) -> None:
        self.core = core
        self.endpoints: list[Endpoint] = []

    def add(self, endpoint: Endpoint) -> None:
        self.endpoints.append(endpoint)

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
        allowed: list[str] = []
        # A literal path wins over a pattern that also matches it: /api/v1/tokens/limits is
        # not the token "limits" of DELETE /api/v1/tokens/{token_id}.
        literal = any(endpoint.path == path for endpoint in self.endpoints)
        for endpoint in self.endpoints:
            found = endpoint.pattern.fullmatch(path)
            if found is None or (literal and endpoint.path != path):
                continue
            if endpoint.method == method or (method == "HEAD" and endpoint.method == "GET"):
                # A client may percent-encode what a segment holds (the colons of an IPv6
                # address, most often); the gateway refused control characters already.
                return endpoint, {k: unquote(v) for k, v in found.groupdict().items()}
            allowed.append(endpoint.method)
        if allowed:
            raise MethodNotAllowed(method, sorted(allowed))
        raise NotFound(f"no auth core endpoint at {path}")

    async def dispatch(self, call: ApiCall) -> ApiResponse:
        endpoint, params = self.match(call.method, call.path)
        if any(unsafe_text(name) or unsafe_text(value) for name, value in call.query.items()):
            # A decoded %00 would reach SQL (PostgreSQL refuses NUL in text: a 500).
            raise InvalidRequest("query parameters must not contain control characters")
        call.params = params
        access = endpoint.access
        if access == API_KEY:
            await self._api_key(call)
        elif access == SERVICE:
            call.principal = await self.service(call)
        elif access == SESSION and self.by_cookie(call):
            pass  # the endpoint authenticates the cookie itself
        elif access == USER_OR_PAT and self._pat(call) is not None:
            if call.principal is None or call.principal.method != "pat":
                secret = self._pat(call)
                assert secret is not None
                found = self.core.pats.authenticate(secret, call.info)
                call.principal = found if isinstance(found, Principal) else await found
        elif access != PUBLIC:
            if call.principal is None or call.principal.method != "jwt":
                call.principal = self.bearer(call)
                if call.admit is not None:
                    pending = call.admit(call.principal)
                    if pending is not None:
                        await pending
            roles = call.principal.roles
            if access == ADMIN and "admin" not in roles:
                raise InsufficientRole("this needs the admin role")
            if access == TENANT and not (
                "admin" in roles
                or ("tenant_admin" in roles and call.principal.tenant_id == params["tenant_id"])
            ):
                # The same answer whether the tenant exists or not: nothing to learn here.
                raise InsufficientRole("this needs the admin role or to be this tenant's admin")
        if endpoint.rate is not None:
            await self._limit(endpoint, endpoint.rate, call)
        return await endpoint.handler(call)

    async def _limit(self, endpoint: Endpoint, rate: Rate, call: ApiCall) -> None:
        principal = call.principal
        if endpoint.access == API_KEY and principal is not None and principal.credential_id:
            subject = "credential:" + principal.credential_id
        else:
            subject = "ip:" + (call.info.ip or "-")
        key = endpoint_limit_key(endpoint.method, endpoint.path, subject)
        verdict = await self.core.limiter.check([key], [rate])
        if not verdict.allowed:
            raise RateLimited(
                "too many requests to this endpoint; retry after the time in Retry-After",
                verdict.retry_after,
                limit=verdict.limit,
                policy=verdict.policy,
            )

    async def _api_key(self, call: ApiCall) -> None:
        if call.principal is not None and call.principal.method == "api_key":
            return  # the route checked it (and the IP whitelists) already
        secret = api_key_from(call.header(h.B_X_API_KEY), call.header(h.B_AUTHORIZATION))
        if secret is None:
            raise MissingCredentials("an API key is needed (X-API-Key)")
        found = self.core.keys.authenticate(secret, call.info.ip, call.info)
        call.principal = found if isinstance(found, Principal) else await found

    async def service(self, call: ApiCall) -> Principal:
        """The internal service behind `Authorization: Service gws_...` (a service token;
        GATEWAY_SERVICE_SECRET is no credential)."""
        if call.principal is not None and call.principal.method == "service":
            return call.principal  # the route checked it already
        value = (call.header(h.B_AUTHORIZATION) or "").strip()
        scheme, _, secret = value.partition(" ")
        if scheme.lower() != "service" or not secret.strip():
            raise MissingCredentials("a service token is needed (Authorization: Service gws_...)")
        found = self.core.service_tokens.authenticate(secret.strip(), call.info)
        return found if isinstance(found, Principal) else await found

    def by_cookie(self, call: ApiCall) -> bool:
        """Whether a SESSION call is to be authenticated by its cookie: cookie sessions are on
        and it carries no Authorization (a bearer token, when sent, decides)."""
        return self.core.settings.session_cookies and call.header(h.B_AUTHORIZATION) is None

    def _pat(self, call: ApiCall) -> str | None:
        """The personal access token of `Authorization: Bearer gwp_...`, if that is what the
        call carries."""
        scheme, _, token = (call.header(h.B_AUTHORIZATION) or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token.startswith(PAT_PREFIX):
            return token
        return None

    def bearer(self, call: ApiCall) -> Principal:
        """The user behind `Authorization: Bearer <access token>`."""
        value = call.header(h.B_AUTHORIZATION) or ""
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MissingCredentials("an access token is needed (Authorization: Bearer ...)")
        return self.core.authenticate_access_token(token.strip())


def endpoint_limit_key(method: str, path: str, subject: str) -> str:
    """The limiter's key of an endpoint's default limit for one subject (`ip:...`)."""
    return f"api:{method}:{path}:{subject}"


def api_key_from(x_api_key: str | None, authorization: str | None) -> str | None:
    """The API key of `X-API-Key`, or of `Authorization: Bearer gwk_...`."""
    if x_api_key is not None and x_api_key.strip():
        return x_api_key.strip()
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip().startswith("gwk_"):
        return token.strip()
    return None
