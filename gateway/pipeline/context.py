"""The context headers upstreams receive (docs/upstream-services.md), signed with
the key of the upstream the request goes to, so that they can trust them without validating
anything again (gateway.context verifies).

Most of the work depends on the principal only, and principals come from the auth core's
caches (the same object for every request with one credential): the header lines and the
signed text around the request id are built once per principal and kept; the key and signer
of an upstream are made once per upstream (and service keyring). A request costs the
timestamp, the request id and one HMAC.
"""

from __future__ import annotations

import time
from typing import Final

from auth_core import headers as h
from auth_core.models import Principal
from auth_core.service import AuthCore
from auth_core.tokens import Keyring
from gateway import context as c
from gateway.context import Signer, derive_key
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult

MAX_CACHED: Final = 10_000
# A C static once compiled; `time.time_ns()` is an attribute look-up on the module first.
# Nanoseconds: the whole seconds are an integer division, where a float's needed `int()`.
_time_ns: Final = time.time_ns
MAX_AUDIENCES: Final = 4096  # reloads may rename upstreams; the old ones' signers go eventually


def context_values(exchange: Exchange) -> dict[str, str]:
    """The context headers (lower-case names) for the exchange's principal."""
    values = {c.REQUEST_ID: exchange.request_id, c.AUTH_METHOD: exchange.auth_method}
    values.update(identity_values(exchange.principal))
    return values


def identity_values(principal: Principal | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if principal is not None:
        if principal.user_id is not None:
            values[c.USER_ID] = principal.user_id
            values[c.USER_ROLES] = ",".join(principal.roles)
            if principal.email:
                values[c.USER_EMAIL] = principal.email
                values[c.USER_EMAIL_VERIFIED] = "true" if principal.email_verified else "false"
        if principal.tenant_id is not None:
            values[c.TENANT_ID] = principal.tenant_id
        if principal.session_id is not None:
            values[c.SESSION_ID] = principal.session_id
        if principal.credential_id is not None:
            values[c.CREDENTIAL_ID] = principal.credential_id
    return values


class ContextSigners:
    """The signer of each audience (an upstream's name), with the key derived from the current
    GATEWAY_SERVICE_SECRET entry: made on first use, kept while the keyring is the same."""

    def __init__(self, core: AuthCore) -> None:
        self.core = core
        self._keyring: Keyring | None = None
        self.by_audience: dict[str, Signer] = {}

    def make(self, audience: str) -> Signer:
        """The signer for `audience` (what `by_audience.get` did not have)."""
        keyring = self.core.service_keyring
        assert keyring is not None, "the auth core is started before requests are served"
        if keyring is not self._keyring or len(self.by_audience) >= MAX_AUDIENCES:
            self.by_audience.clear()  # in place: SetContext holds its `get`
            self._keyring = keyring
        kid, secret = keyring.current
        signer = self.by_audience[audience] = Signer(kid, derive_key(secret, audience), audience)
        return signer


class _Prepared:
    """What SetContext keeps per principal: the header lines, and the signed lines before
    and after `x-request-id` (names sort: auth-method, credential-id | request-id | the rest)."""

    __slots__ = ("after", "before", "lines", "principal")

    def __init__(self, principal: Principal | None, auth_method: str) -> None:
        self.principal = principal  # held, so that its id() is not reused while cached
        values = {c.AUTH_METHOD: auth_method, **identity_values(principal)}
        self.lines = b"".join(
            _NAMES[name] + value.encode() + b"\r\n" for name, value in values.items()
        )
        self.before = "".join(
            f"{name}:{values[name]}\n" for name in sorted(values) if name < c.REQUEST_ID
        )
        self.after = "".join(
            f"\n{name}:{values[name]}" for name in sorted(values) if name > c.REQUEST_ID
        )


class SetContext(Stage):
    """Adds X-Auth-Method, the identity headers, X-Gateway-Timestamp and -Signature."""

    def __init__(self, core: AuthCore) -> None:
        self.signers = ContextSigners(core)
        self._signer_of = self.signers.by_audience.get
        self._prepared: dict[tuple[int, str], _Prepared] = {}
        # The timestamp (whole seconds) as text and as its header line up to the signature's
        # name, made once a second rather than a request (an int formatted, a str encoded).
        self._second = -1
        self._stamp = ""
        self._stamp_lines = b""

    def __call__(self, exchange: Exchange) -> StageResult:
        principal = exchange.principal
        key = (id(principal), exchange.auth_method)
        prepared = self._prepared.get(key)
        if prepared is None or prepared.principal is not principal:
            if len(self._prepared) >= MAX_CACHED:
                self._prepared.clear()
            prepared = self._prepared[key] = _Prepared(principal, exchange.auth_method)
        route = exchange.route
        assert route is not None, "the head ends by matching a route"
        signer = self._signer_of(route.upstream) or self.signers.make(route.upstream)
        second = _time_ns() // 1_000_000_000
        if second != self._second:
            self._second = second
            self._stamp = str(second)
            self._stamp_lines = _TIMESTAMP_LINE + self._stamp.encode() + _SIGNATURE_LINE
        stamp = self._stamp
        # The signed text after its first two lines (`v2`, the audience: in the signer).
        rest = (
            f"{exchange.request.method}\n{exchange.upstream_path}{exchange.query}\n{stamp}\n"
            f"{prepared.before}{c.REQUEST_ID}:{exchange.request_id}{prepared.after}"
        )
        exchange.context_headers.append(
            prepared.lines + self._stamp_lines + signer.signature(rest.encode()).encode() + b"\r\n"
        )
        return None


_NAMES = {
    c.AUTH_METHOD: h.W_X_AUTH_METHOD + b": ",
    c.USER_ID: h.W_X_USER_ID + b": ",
    c.USER_EMAIL: h.W_X_USER_EMAIL + b": ",
    c.USER_EMAIL_VERIFIED: h.W_X_USER_EMAIL_VERIFIED + b": ",
    c.USER_ROLES: h.W_X_USER_ROLES + b": ",
    c.TENANT_ID: h.W_X_TENANT_ID + b": ",
    c.SESSION_ID: h.W_X_SESSION_ID + b": ",
    c.CREDENTIAL_ID: h.W_X_CREDENTIAL_ID + b": ",
}
_TIMESTAMP_LINE: Final[bytes] = h.W_X_GATEWAY_TIMESTAMP + b": "
_SIGNATURE_LINE: Final[bytes] = b"\r\n" + h.W_X_GATEWAY_SIGNATURE + b": "
