"""The auth core's settings, from the environment (docs/configuration.md), parsed once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from auth_core.errors import SettingsError
from auth_core.passwords import HashCost
from auth_core.tokens import Keyring, KeyringError
from auth_core.units import parse_boolean, parse_duration, parse_instant


def _database_url(value: str) -> str:
    scheme = urlsplit(value).scheme
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError("use sqlite:///path or postgresql://...")
    if scheme == "sqlite" and not value.startswith("sqlite:///"):
        raise ValueError("a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path")
    return value


DEFAULT_DATABASE_URL = "sqlite:///./gateway.db"


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """GATEWAY_DATABASE_URL alone (the default when unset): what `gateway migrate` needs, which
    touches no secret and so must not demand one."""
    env = os.environ if environ is None else environ
    raw = env.get("GATEWAY_DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        return _database_url(raw)
    except ValueError as exc:
        raise SettingsError(f"GATEWAY_DATABASE_URL: {exc}") from None


def _mail_url(value: str) -> str:
    if value.startswith("outbox:") and len(value) > len("outbox:"):
        return value
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme == "smtp" and parts.hostname and port != -1:
        return value
    raise ValueError("use smtp://host:port or outbox:DIRECTORY")


def _redis_url(value: str) -> str:
    if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("use redis://host:port[/db], rediss://... or unix:///path")
    return value


def _prefix(value: str) -> str:
    if not value or len(value) > 64 or any(c.isspace() for c in value):
        raise ValueError("a key prefix is 1 to 64 characters, no spaces")
    return value


def _seconds_or_zero(value: str) -> float:
    return 0.0 if value.strip() in ("0", "off") else parse_duration(value)


def _count_or_zero(value: str) -> int:
    if value.strip() == "off":
        return 0
    try:
        count = int(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number (0 turns it off)") from None
    if count < 0:
        raise ValueError(f"{value!r} must be 0 or more")
    return count


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _public_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError("use the public base URL, e.g. https://api.example.com")
    return value.strip().rstrip("/")


def _keyring(value: str) -> Keyring:
    try:
        return Keyring.parse(value)
    except KeyringError as exc:
        raise ValueError(str(exc)) from None


def _hash_cost(value: str) -> HashCost:
    try:
        time_cost, memory, parallelism = (int(part) for part in value.split(","))
    except ValueError:
        raise ValueError("use time_cost,memory_kib,parallelism, e.g. 3,65536,4") from None
    if time_cost < 1 or memory < 8 * parallelism or parallelism < 1:
        raise ValueError("argon2 needs time_cost >= 1, parallelism >= 1, memory >= 8 x lanes")
    return HashCost(time_cost, memory, parallelism)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    database_url: str = DEFAULT_DATABASE_URL
    jwt_keyring: Keyring | None = None  # None: generated and stored (embedded only)
    service_keyring: Keyring | None = None
    access_ttl: float = 15 * 60.0
    refresh_ttl: float = 7 * 86400.0
    ip_whitelist_enabled: bool = True
    origin_validation_enabled: bool = True
    # Bans (docs/authentication.md): this many wrong credentials from one address within the window
    # ban it for the duration; 0 for any of the three: nothing is counted or banned.
    ban_threshold: int = 30
    ban_window: float = 600.0
    ban_duration: float = 900.0
    mail_url: str = "outbox:./outbox"
    issuer: str = "gateway"
    audience: str = "gateway"
    public_url: str | None = None  # named in mails; never taken from a request's Host
    hash_cost: HashCost = HashCost()  # noqa: RUF009 - frozen, so one shared default is safe
    redis_url: str | None = None  # None: in-process cache, limits and events
    # How long past its cache lifetime a key, PAT or tenant policy may still be served while
    # the database cannot be reached (docs/operations/running.md); 0: never.
    stale_window: float = 600.0
    # How long a key, PAT or tenant policy read from the database is trusted without reading
    # it again (revocation events void it sooner).
    cache_ttl: float = 300.0
    redis_prefix: str = "gateway:"
    # Password logins (and refreshes of their sessions) refused until the e-mail address is
    # confirmed; a tenant's SDK end users are vouched for by its API key and exempt.
    require_verified_email: bool = False
    # Browser apps' refresh tokens in an HttpOnly cookie instead of the JSON body
    # (docs/authentication.md); cookie-authenticated writes then pass the CSRF rule (csrf.py).
    session_cookies: bool = False
    # Personal access tokens imported from another backend in its own format (`gateway pats
    # import`) are accepted until this instant (Unix seconds), then refused as retired; None:
    # the old format is not accepted at all (docs/migration.md).
    legacy_pat_until: float | None = None

    @property
    def bans_enabled(self) -> bool:
        return self.ban_threshold > 0 and self.ban_window > 0 and self.ban_duration > 0

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        readers = [
            ("GATEWAY_DATABASE_URL", "database_url", _database_url),
            ("GATEWAY_JWT_SECRET", "jwt_keyring", _keyring),
            ("GATEWAY_SERVICE_SECRET", "service_keyring", _keyring),
            ("GATEWAY_ACCESS_TOKEN_TTL", "access_ttl", parse_duration),
            ("GATEWAY_REFRESH_TOKEN_TTL", "refresh_ttl", parse_duration),
            ("GATEWAY_IP_WHITELIST_ENABLED", "ip_whitelist_enabled", parse_boolean),
            ("GATEWAY_ORIGIN_VALIDATION_ENABLED", "origin_validation_enabled", parse_boolean),
            ("GATEWAY_BAN_THRESHOLD", "ban_threshold", _count_or_zero),
            ("GATEWAY_BAN_WINDOW", "ban_window", _seconds_or_zero),
            ("GATEWAY_BAN_DURATION", "ban_duration", _seconds_or_zero),
            ("GATEWAY_MAIL_URL", "mail_url", _mail_url),
            ("GATEWAY_JWT_ISSUER", "issuer", _name),
            ("GATEWAY_JWT_AUDIENCE", "audience", _name),
            ("GATEWAY_PUBLIC_URL", "public_url", _public_url),
            ("GATEWAY_PASSWORD_HASH_COST", "hash_cost", _hash_cost),
            ("GATEWAY_REDIS_URL", "redis_url", _redis_url),
            ("GATEWAY_REDIS_PREFIX", "redis_prefix", _prefix),
            ("GATEWAY_AUTH_STALE_WINDOW", "stale_window", _seconds_or_zero),
            ("GATEWAY_AUTH_CACHE_TTL", "cache_ttl", parse_duration),
            ("GATEWAY_REQUIRE_VERIFIED_EMAIL", "require_verified_email", parse_boolean),
            ("GATEWAY_SESSION_COOKIES", "session_cookies", parse_boolean),
            ("GATEWAY_LEGACY_PAT_UNTIL", "legacy_pat_until", parse_instant),
        ]
        for name, attribute, parse in readers:
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[attribute] = parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from None
        settings = cls(**values)  # type: ignore[arg-type]
        if not settings.embedded:
            for name, keyring in (
                ("GATEWAY_JWT_SECRET", settings.jwt_keyring),
                ("GATEWAY_SERVICE_SECRET", settings.service_keyring),
            ):
                if keyring is None:
                    raise SettingsError(
                        f"{name}: required with PostgreSQL (every replica must share it); "
                        "set kid:secret with a secret of 32 bytes or more"
                    )
        return settings
