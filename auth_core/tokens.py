"""Access tokens: HS256 JWTs, issued and verified as RFC 8725 asks.

Verification trusts nothing in the token beyond what it must read to find our key:

- the header must be exactly `alg: HS256`, `typ: at+jwt` (RFC 9068's explicit type, so an
  access token cannot be confused with any other JWT we might sign) and a `kid` naming one of
  our own secrets; `jwk`, `jku`, `x5u`, `x5c`, `crit` or any other member is refused;
- only HS256 is accepted: `none`, RS256 with our secret as a "public key", and every other
  algorithm confusion fail before a signature is computed;
- `exp`, `iat`, `iss`, `aud`, `sub`, `sid`, `jti` are required; `exp`, `nbf` and `iat` are
  checked with a small leeway; `iss` and `aud` must be ours;
- a token longer than MAX_TOKEN_BYTES is refused unread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from auth_core.errors import ErrorCode
from auth_core.text import unsafe_text

MAX_TOKEN_BYTES = 4096
LEEWAY = 30.0  # seconds of clock skew tolerated on exp, nbf and iat
TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
ALGORITHM = "HS256"
_REQUIRED = ("exp", "iat", "iss", "aud", "sub", "sid", "jti")
# Claims read as text (roles too, a list of it); any other claim is never read.
_TEXT_CLAIMS = ("sub", "sid", "jti", "tenant", "tid", "email", "name")


class TokenError(Exception):
    """A token that proves nothing; `code` is the error code to answer with."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class KeyringError(ValueError):
    """A secret list that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Keyring:
    """`kid:secret[,kid:secret...]`: the first signs, every one verifies (rotation)."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, text: str) -> Keyring:
        keys: list[tuple[str, bytes]] = []
        for item in text.split(","):
            kid, sep, secret = item.strip().partition(":")
            if not sep or not kid or not secret:
                raise KeyringError("each entry must be kid:secret")
            if len(secret.encode()) < 32:
                raise KeyringError(f"the secret of key {kid!r} must be at least 32 bytes")
            if any(kid == known for known, _ in keys):
                raise KeyringError(f"key id {kid!r} appears twice")
            keys.append((kid, secret.encode()))
        if not keys:
            raise KeyringError("at least one kid:secret is needed")
        return cls(tuple(keys))

    @staticmethod
    def generate(kid: str = "k1") -> str:
        """A new `kid:secret` entry (for the embedded mode's first start)."""
        return f"{kid}:{secrets.token_urlsafe(48)}"

    @property
    def current(self) -> tuple[str, bytes]:
        return self.keys[0]

    def secret(self, kid: str) -> bytes | None:
        wanted = kid.encode("utf-8", "surrogatepass")
        for known, secret in self.keys:
            if hmac.compare_digest(known.encode(), wanted):
                return secret
        return None


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: str
    session_id: str
    token_id: str
    roles: tuple[str, ...]
    tenant_id: str | None
    email: str | None
    email_verified: bool
    issued_at: float
    expires_at: float


class AccessTokens:
    """Issue and verify access tokens for one issuer and audience."""

    def __init__(self, keyring: Keyring, *, issuer: str, audience: str, ttl: float) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl

    def issue(
        self,
        *,
        subject: str,
        session_id: str,
        roles: tuple[str, ...],
        tenant_id: str | None,
        email: str | None,
        email_verified: bool = False,
        now: float | None = None,
    ) -> tuple[str, AccessClaims]:
        # Milliseconds, not whole seconds: a user revocation at t must not void a token
        # issued later within the same second (a login right after a password reset).
        issued = round(now if now is not None else time.time(), 3)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "sid": session_id,
            "jti": secrets.token_urlsafe(12),
            "roles": list(roles),
            "iat": issued,
            "nbf": issued,
            "exp": round(issued + self.ttl, 3),
        }
        if tenant_id is not None:
            claims["tenant"] = tenant_id
        if email is not None:
            claims["email"] = email
            # OpenID Connect's claim: upstreams are told whether the address was proven
            # (X-User-Email-Verified); a token without it (issued before) says it was not.
            claims["email_verified"] = email_verified
        kid, secret = self.keyring.current
        token = jwt.encode(
            claims, secret, algorithm=ALGORITHM, headers={"kid": kid, "typ": TOKEN_TYPE}
        )
        return token, _claims(claims)

    def verify(self, token: str, now: float | None = None) -> AccessClaims:
        """The claims of a valid token; TokenError otherwise."""
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError(ErrorCode.INVALID_TOKEN, "the token is too large")
        header = _header(token)
        kid = header.get("kid")
        if (
            set(header) != {"alg", "typ", "kid"}
            or header.get("alg") != ALGORITHM
            or header.get("typ") != TOKEN_TYPE
            or not isinstance(kid, str)
        ):
            raise TokenError(ErrorCode.INVALID_TOKEN, "the token's header is not one we issue")
        secret = self.keyring.secret(kid)
        if secret is None:
            raise TokenError(ErrorCode.INVALID_TOKEN, "the token is signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": list(_REQUIRED), "verify_iat": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError(ErrorCode.TOKEN_EXPIRED, "the token has expired") from None
        except (jwt.PyJWTError, ValueError, RecursionError):
            raise TokenError(ErrorCode.INVALID_TOKEN, "the token is not valid") from None
        current = now if now is not None else time.time()
        if float(claims["iat"]) > current + LEEWAY:
            raise TokenError(ErrorCode.INVALID_TOKEN, "the token is issued in the future")
        if not _claims_are_text(claims):
            raise TokenError(ErrorCode.INVALID_TOKEN, "the token's claims are malformed")
        if not isinstance(claims.get("email_verified", False), bool):
            raise TokenError(ErrorCode.INVALID_TOKEN, "the token's email_verified is malformed")
        return _claims(claims)


def _claims_are_text(claims: dict[str, Any]) -> bool:
    """The identity claims are strings (roles a list of them) with no control characters:
    they become context headers, log fields and database keys."""
    roles = claims.get("roles", [])
    if not isinstance(roles, list):
        return False
    texts = [claims[name] for name in _TEXT_CLAIMS if name in claims]
    texts.extend(roles)
    return all(isinstance(text, str) and not unsafe_text(text) for text in texts)


def _claims(claims: dict[str, Any]) -> AccessClaims:
    return AccessClaims(
        subject=str(claims["sub"]),
        session_id=str(claims["sid"]),
        token_id=str(claims["jti"]),
        roles=tuple(str(role) for role in claims.get("roles", [])),
        tenant_id=claims.get("tenant"),
        email=claims.get("email"),
        email_verified=claims.get("email_verified") is True,
        issued_at=float(claims["iat"]),
        expires_at=float(claims["exp"]),
    )


def _header(token: str) -> dict[str, Any]:
    encoded = token.split(".", 1)[0]
    if token.count(".") != 2 or not encoded:
        raise TokenError(ErrorCode.INVALID_TOKEN, "the token is not a JWT")
    try:
        data = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise TokenError(ErrorCode.INVALID_TOKEN, "the token's header is unreadable") from None
    if not isinstance(data, dict):
        raise TokenError(ErrorCode.INVALID_TOKEN, "the token's header is unreadable")
    return data


def opaque_token(prefix: str = "") -> str:
    """A random secret for refresh, e-mail and reset tokens (256 bits)."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored instead of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()
