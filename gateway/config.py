"""Deployment settings from the environment, parsed once at start-up (docs/configuration.md).

Every variable is validated here; a bad value stops start-up with a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import netaddr

from auth_core.config import AuthSettings
from auth_core.errors import SettingsError
from auth_core.units import parse_boolean, parse_duration, parse_size
from gateway.login.settings import LoginSettings, cookie_domain, default_return, login_url

T = TypeVar("T")


def _cidrs(value: str) -> netaddr.IPSet:
    items = [item.strip() for item in value.split(",") if item.strip()]
    try:
        return netaddr.IPSet([netaddr.IPNetwork(item) for item in items])
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise ValueError(f"{value!r} is not a comma-separated list of CIDRs") from None


def _count(value: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{value!r} is not a whole number")
    number = int(text)
    if number < 1:
        raise ValueError(f"{value!r} must be at least 1")
    return number


def _limit(value: str) -> int:
    """A whole number, 0 meaning no limit."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{value!r} is not a whole number (0 for no limit)")
    return int(text)


def _access_log(value: str) -> str:
    if not value.strip():
        raise ValueError("use stdout, off, or a file path")
    return value.strip()


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"{value!r} is not one of debug, info, warning, error")
    return level


def _port(value: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise ValueError(f"{value!r} is not a port number (1-65535)")
    return int(text)


def _file(value: str) -> Path:
    path = Path(value.strip())
    if not path.is_file():
        raise ValueError(f"{value!r} is not a readable file")
    return path


def _directory(value: str) -> Path:
    path = Path(value.strip())
    if not path.is_dir():
        raise ValueError(f"{value!r} is not a directory")
    return path


def _whole_seconds(value: str) -> int:
    return int(parse_duration(value))


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the environment configures; immutable once loaded."""

    trusted_proxies: netaddr.IPSet = field(default_factory=netaddr.IPSet)
    # The proxies that may call forwardAuth (/api/v1/auth/validate), by TCP peer address.
    forward_auth_clients: netaddr.IPSet = field(
        default_factory=lambda: netaddr.IPSet(["127.0.0.0/8", "::1/128"])
    )
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    body_timeout: float = 60.0
    max_header_size: int = 32 * 1024
    max_headers: int = 100
    max_connections_per_address: int = 256  # open client connections of one address, per worker
    drain_timeout: float = 30.0
    access_log: str = "stdout"
    log_level: str = "INFO"
    reload_interval: float = 1.0
    watch_config: bool = True
    ws_max_message: int = 1024 * 1024  # bytes of one websocket message, fragments together
    ws_idle_timeout: float = 300.0  # no frame either way for this long closes a socket
    ws_max_per_address: int = 100  # open websockets from one client address, per worker
    ws_max_per_tenant: int = 1000  # open websockets of one tenant's users, per worker
    # TLS on the listener (docs/tls.md): one certificate, or a directory of them by host name.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_dir: Path | None = None
    http_redirect_port: int | None = None  # a plain-HTTP listener answering 308 to https://
    hsts_max_age: int = 0  # seconds of Strict-Transport-Security on TLS answers; 0: none
    auth: AuthSettings = field(default_factory=AuthSettings)
    login: LoginSettings = field(default_factory=LoginSettings)

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None or self.tls_dir is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read GATEWAY_* variables; SettingsError names the first bad one."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}

        def read(name: str, attr: str, parse: Callable[[str], T]) -> None:
            raw = env.get(name)
            if raw is None or raw == "":
                return
            try:
                values[attr] = parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from None

        read("GATEWAY_TRUSTED_PROXIES", "trusted_proxies", _cidrs)
        read("GATEWAY_FORWARD_AUTH_CLIENTS", "forward_auth_clients", _cidrs)
        read("GATEWAY_HEADER_TIMEOUT", "header_timeout", parse_duration)
        read("GATEWAY_KEEPALIVE_TIMEOUT", "keepalive_timeout", parse_duration)
        read("GATEWAY_BODY_TIMEOUT", "body_timeout", parse_duration)
        read("GATEWAY_MAX_HEADER_SIZE", "max_header_size", parse_size)
        read("GATEWAY_MAX_HEADERS", "max_headers", _count)
        read("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "max_connections_per_address", _limit)
        read("GATEWAY_DRAIN_TIMEOUT", "drain_timeout", parse_duration)
        read("GATEWAY_ACCESS_LOG", "access_log", _access_log)
        read("GATEWAY_LOG_LEVEL", "log_level", _log_level)
        read("GATEWAY_RELOAD_INTERVAL", "reload_interval", parse_duration)
        read("GATEWAY_WATCH_CONFIG", "watch_config", parse_boolean)
        read("GATEWAY_WS_MAX_MESSAGE", "ws_max_message", parse_size)
        read("GATEWAY_WS_IDLE_TIMEOUT", "ws_idle_timeout", parse_duration)
        read("GATEWAY_WS_MAX_PER_ADDRESS", "ws_max_per_address", _count)
        read("GATEWAY_WS_MAX_PER_TENANT", "ws_max_per_tenant", _count)
        read("GATEWAY_TLS_CERT_FILE", "tls_cert_file", _file)
        read("GATEWAY_TLS_KEY_FILE", "tls_key_file", _file)
        read("GATEWAY_TLS_DIR", "tls_dir", _directory)
        read("GATEWAY_HTTP_REDIRECT_PORT", "http_redirect_port", _port)
        read("GATEWAY_HSTS_MAX_AGE", "hsts_max_age", _whole_seconds)
        _check_tls(values)
        login: dict[str, object] = {}
        for name, attr, parse in (
            ("GATEWAY_LOGIN_COOKIE_DOMAIN", "cookie_domain", cookie_domain),
            ("GATEWAY_LOGIN_URL", "login_url", login_url),
            ("GATEWAY_LOGIN_DEFAULT_RETURN", "default_return", default_return),
        ):
            read(name, attr, parse)
            if attr in values:
                login[attr] = values.pop(attr)
        values["login"] = LoginSettings(**login)  # type: ignore[arg-type]
        values["auth"] = AuthSettings.from_env(env)
        return cls(**values)  # type: ignore[arg-type]


def _check_tls(values: dict[str, object]) -> None:
    """The TLS variables that only make sense together."""
    cert, key = "tls_cert_file" in values, "tls_key_file" in values
    if cert != key:
        given, missing = (
            ("GATEWAY_TLS_CERT_FILE", "GATEWAY_TLS_KEY_FILE")
            if cert
            else ("GATEWAY_TLS_KEY_FILE", "GATEWAY_TLS_CERT_FILE")
        )
        raise SettingsError(f"{missing}: required with {given} (the certificate and its key)")
    if cert and "tls_dir" in values:
        raise SettingsError(
            "GATEWAY_TLS_DIR: set either it (certificates by host name, one named default) or "
            "GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE (one certificate), not both"
        )
    tls = cert or "tls_dir" in values
    for name, attr in (
        ("GATEWAY_HTTP_REDIRECT_PORT", "http_redirect_port"),
        ("GATEWAY_HSTS_MAX_AGE", "hsts_max_age"),
    ):
        if attr in values and not tls:
            raise SettingsError(
                f"{name}: needs TLS on the listener (GATEWAY_TLS_CERT_FILE or GATEWAY_TLS_DIR)"
            )
