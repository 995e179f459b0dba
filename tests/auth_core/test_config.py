"""AuthSettings.from_env: defaults, every variable, and bad values refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from auth_core.config import AuthSettings
from auth_core.errors import SettingsError
from auth_core.passwords import HashCost
from auth_core.tokens import Keyring

JWT = "k1:" + "j" * 40
SERVICE = "s1:" + "v" * 40
POSTGRES = "postgresql://gw:pw@db.internal:5432/gateway"


def test_defaults() -> None:
    settings = AuthSettings.from_env({})
    assert settings == AuthSettings()
    assert settings.database_url == "sqlite:///./gateway.db"
    assert settings.embedded is True
    assert (settings.jwt_keyring, settings.service_keyring) == (None, None)
    assert (settings.access_ttl, settings.refresh_ttl) == (900.0, 7 * 86400.0)
    assert settings.ip_whitelist_enabled is True
    assert settings.origin_validation_enabled is True
    assert settings.mail_url == "outbox:./outbox"
    assert (settings.issuer, settings.audience) == ("gateway", "gateway")
    assert settings.hash_cost == HashCost(3, 65536, 4)
    assert (settings.ban_threshold, settings.ban_window, settings.ban_duration) == (
        30,
        600.0,
        900.0,
    )
    assert settings.bans_enabled is True
    assert settings.require_verified_email is False


def test_empty_values_mean_the_default() -> None:
    names = [
        "GATEWAY_DATABASE_URL",
        "GATEWAY_JWT_SECRET",
        "GATEWAY_SERVICE_SECRET",
        "GATEWAY_ACCESS_TOKEN_TTL",
        "GATEWAY_REFRESH_TOKEN_TTL",
        "GATEWAY_IP_WHITELIST_ENABLED",
        "GATEWAY_ORIGIN_VALIDATION_ENABLED",
        "GATEWAY_MAIL_URL",
        "GATEWAY_PASSWORD_HASH_COST",
    ]
    assert AuthSettings.from_env(dict.fromkeys(names, "")) == AuthSettings()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param(
            {"GATEWAY_DATABASE_URL": "sqlite:///data/gw.db"},
            {"database_url": "sqlite:///data/gw.db", "embedded": True},
            id="sqlite-relative",
        ),
        pytest.param(
            {"GATEWAY_DATABASE_URL": "sqlite:////var/lib/gw.db"},
            {"database_url": "sqlite:////var/lib/gw.db"},
            id="sqlite-absolute",
        ),
        pytest.param(
            {
                "GATEWAY_DATABASE_URL": POSTGRES,
                "GATEWAY_JWT_SECRET": JWT,
                "GATEWAY_SERVICE_SECRET": SERVICE,
            },
            {
                "database_url": POSTGRES,
                "embedded": False,
                "jwt_keyring": Keyring.parse(JWT),
                "service_keyring": Keyring.parse(SERVICE),
            },
            id="postgresql-with-secrets",
        ),
        pytest.param(
            {
                "GATEWAY_DATABASE_URL": "postgres://db/gw",
                "GATEWAY_JWT_SECRET": JWT,
                "GATEWAY_SERVICE_SECRET": SERVICE,
            },
            {"database_url": "postgres://db/gw", "embedded": False},
            id="postgres-scheme",
        ),
        pytest.param(
            {"GATEWAY_JWT_SECRET": f"k2:{'n' * 32},{JWT}"},
            {"jwt_keyring": Keyring(((("k2", b"n" * 32)), ("k1", b"j" * 40)))},
            id="jwt-keyring-rotation",
        ),
        pytest.param(
            {"GATEWAY_SERVICE_SECRET": SERVICE},
            {"service_keyring": Keyring.parse(SERVICE), "jwt_keyring": None},
            id="service-secret-embedded",
        ),
        pytest.param({"GATEWAY_ACCESS_TOKEN_TTL": "5m"}, {"access_ttl": 300.0}, id="access-5m"),
        pytest.param({"GATEWAY_ACCESS_TOKEN_TTL": "90"}, {"access_ttl": 90.0}, id="access-bare"),
        pytest.param({"GATEWAY_ACCESS_TOKEN_TTL": "1h"}, {"access_ttl": 3600.0}, id="access-1h"),
        pytest.param(
            {"GATEWAY_REFRESH_TOKEN_TTL": "30d"}, {"refresh_ttl": 30 * 86400.0}, id="refresh-30d"
        ),
        pytest.param(
            {"GATEWAY_REFRESH_TOKEN_TTL": "1500ms"}, {"refresh_ttl": 1.5}, id="refresh-ms"
        ),
        *(
            pytest.param(
                {"GATEWAY_IP_WHITELIST_ENABLED": raw},
                {"ip_whitelist_enabled": value},
                id=f"ip-{raw}",
            )
            for raw, value in [
                ("false", False),
                ("0", False),
                ("No", False),
                ("off", False),
                ("TRUE", True),
                ("1", True),
                ("yes", True),
                (" on ", True),
            ]
        ),
        pytest.param(
            {"GATEWAY_ORIGIN_VALIDATION_ENABLED": "false"},
            {"origin_validation_enabled": False, "ip_whitelist_enabled": True},
            id="origin-off",
        ),
        pytest.param(
            {"GATEWAY_MAIL_URL": "smtp://mail.example:2525"},
            {"mail_url": "smtp://mail.example:2525"},
            id="mail-smtp",
        ),
        pytest.param(
            {"GATEWAY_MAIL_URL": "smtp://mail.example"},
            {"mail_url": "smtp://mail.example"},
            id="mail-smtp-default-port",
        ),
        pytest.param(
            {"GATEWAY_MAIL_URL": "outbox:/var/mail/gw"},
            {"mail_url": "outbox:/var/mail/gw"},
            id="mail-outbox",
        ),
        pytest.param(
            {"GATEWAY_JWT_ISSUER": " https://auth.example "},
            {"issuer": "https://auth.example"},
            id="issuer",
        ),
        pytest.param({"GATEWAY_JWT_AUDIENCE": "api"}, {"audience": "api"}, id="audience"),
        pytest.param(
            {"GATEWAY_PASSWORD_HASH_COST": "1,8192,1"},
            {"hash_cost": HashCost(1, 8192, 1)},
            id="hash-cost",
        ),
        pytest.param(
            {"GATEWAY_PASSWORD_HASH_COST": "2,32,4"},
            {"hash_cost": HashCost(2, 32, 4)},
            id="hash-cost-minimum-memory",
        ),
        pytest.param(
            {
                "GATEWAY_BAN_THRESHOLD": "5",
                "GATEWAY_BAN_WINDOW": "2m",
                "GATEWAY_BAN_DURATION": "1h",
            },
            {"ban_threshold": 5, "ban_window": 120.0, "ban_duration": 3600.0, "bans_enabled": True},
            id="bans",
        ),
        *(
            pytest.param({name: off}, {"bans_enabled": False}, id=f"bans-{name[12:]}-{off}")
            for name in ("GATEWAY_BAN_THRESHOLD", "GATEWAY_BAN_WINDOW", "GATEWAY_BAN_DURATION")
            for off in ("0", "off")
        ),
        pytest.param(
            {"GATEWAY_REQUIRE_VERIFIED_EMAIL": "true"},
            {"require_verified_email": True},
            id="require-verified-email",
        ),
        pytest.param({}, {"session_cookies": False}, id="session-cookies-default-off"),
        pytest.param(
            {"GATEWAY_SESSION_COOKIES": "true"}, {"session_cookies": True}, id="session-cookies"
        ),
        pytest.param({}, {"legacy_pat_until": None}, id="legacy-pats-default-refused"),
        pytest.param(
            {"GATEWAY_LEGACY_PAT_UNTIL": "2027-01-31T00:00:00Z"},
            {"legacy_pat_until": 1801353600.0},
            id="legacy-pats-z",
        ),
        pytest.param(
            {"GATEWAY_LEGACY_PAT_UNTIL": "2027-01-31 02:00:00+02:00"},
            {"legacy_pat_until": 1801353600.0},
            id="legacy-pats-offset-space",
        ),
    ],
)
def test_each_variable(env: dict[str, str], expected: dict[str, Any]) -> None:
    settings = AuthSettings.from_env(env)
    for attribute, value in expected.items():
        assert getattr(settings, attribute) == value


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ACCESS_TOKEN_TTL", "2m")
    monkeypatch.setenv("GATEWAY_MAIL_URL", "outbox:/tmp/mail")
    settings = AuthSettings.from_env()
    assert (settings.access_ttl, settings.mail_url) == (120.0, "outbox:/tmp/mail")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("GATEWAY_DATABASE_URL", "mysql://db/gw", id="database-scheme"),
        pytest.param("GATEWAY_DATABASE_URL", "gateway.db", id="database-no-scheme"),
        pytest.param("GATEWAY_DATABASE_URL", "sqlite://gateway.db", id="database-sqlite-2-slashes"),
        pytest.param("GATEWAY_LEGACY_PAT_UNTIL", "2027-01-31", id="legacy-pats-date-only"),
        pytest.param("GATEWAY_LEGACY_PAT_UNTIL", "2027-01-31T00:00:00", id="legacy-pats-no-offset"),
        pytest.param("GATEWAY_LEGACY_PAT_UNTIL", "next month", id="legacy-pats-words"),
        pytest.param("GATEWAY_JWT_SECRET", "k1:short", id="jwt-short"),
        pytest.param("GATEWAY_JWT_SECRET", "j" * 40, id="jwt-no-kid"),
        pytest.param("GATEWAY_JWT_SECRET", f"{JWT},{JWT}", id="jwt-duplicate-kid"),
        pytest.param("GATEWAY_JWT_SECRET", f"{JWT},", id="jwt-trailing-comma"),
        pytest.param("GATEWAY_SERVICE_SECRET", "s1:short", id="service-short"),
        pytest.param("GATEWAY_SERVICE_SECRET", ":" + "v" * 40, id="service-empty-kid"),
        pytest.param("GATEWAY_ACCESS_TOKEN_TTL", "soon", id="access-word"),
        pytest.param("GATEWAY_ACCESS_TOKEN_TTL", "0", id="access-zero"),
        pytest.param("GATEWAY_ACCESS_TOKEN_TTL", "-5m", id="access-negative"),
        pytest.param("GATEWAY_ACCESS_TOKEN_TTL", "15 minutes", id="access-unit-word"),
        pytest.param("GATEWAY_REFRESH_TOKEN_TTL", "7w", id="refresh-weeks"),
        pytest.param("GATEWAY_IP_WHITELIST_ENABLED", "maybe", id="ip-maybe"),
        pytest.param("GATEWAY_ORIGIN_VALIDATION_ENABLED", "2", id="origin-2"),
        pytest.param("GATEWAY_REQUIRE_VERIFIED_EMAIL", "sometimes", id="verified-sometimes"),
        pytest.param("GATEWAY_SESSION_COOKIES", "cookies", id="session-cookies-word"),
        pytest.param("GATEWAY_MAIL_URL", "outbox:", id="mail-outbox-no-dir"),
        pytest.param("GATEWAY_MAIL_URL", "smtp://", id="mail-smtp-no-host"),
        pytest.param("GATEWAY_MAIL_URL", "http://mail.example", id="mail-http"),
        pytest.param("GATEWAY_MAIL_URL", "/var/mail", id="mail-path"),
        pytest.param(
            "GATEWAY_MAIL_URL",
            "smtp://mail.example:notaport",
            id="mail-port-word",
        ),
        pytest.param(
            "GATEWAY_MAIL_URL",
            "smtp://mail.example:99999",
            id="mail-port-range",
        ),
        pytest.param("GATEWAY_PASSWORD_HASH_COST", "3,65536", id="hash-cost-two-parts"),
        pytest.param("GATEWAY_PASSWORD_HASH_COST", "a,b,c", id="hash-cost-words"),
        pytest.param("GATEWAY_PASSWORD_HASH_COST", "0,65536,4", id="hash-cost-time-0"),
        pytest.param("GATEWAY_PASSWORD_HASH_COST", "3,65536,0", id="hash-cost-lanes-0"),
        pytest.param("GATEWAY_PASSWORD_HASH_COST", "3,16,4", id="hash-cost-memory-low"),
        pytest.param("GATEWAY_BAN_THRESHOLD", "-1", id="ban-threshold-negative"),
        pytest.param("GATEWAY_BAN_THRESHOLD", "many", id="ban-threshold-word"),
        pytest.param("GATEWAY_BAN_THRESHOLD", "2.5", id="ban-threshold-fraction"),
        pytest.param("GATEWAY_BAN_WINDOW", "soon", id="ban-window-word"),
        pytest.param("GATEWAY_BAN_WINDOW", "-10m", id="ban-window-negative"),
        pytest.param("GATEWAY_BAN_DURATION", "15 minutes", id="ban-duration-unit-word"),
        pytest.param("GATEWAY_BAN_DURATION", "2w", id="ban-duration-weeks"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    env = {name: value}
    if name != "GATEWAY_DATABASE_URL":
        env.setdefault("GATEWAY_DATABASE_URL", "sqlite:///gw.db")
    try:
        AuthSettings.from_env(env)
    except SettingsError as exc:
        message = str(exc)
    else:
        pytest.fail(f"{name}={value!r} was accepted")
    assert message.startswith(f"{name}: ")
    assert len(message) > len(name) + 2
    if "SECRET" in name:
        # The message helps without repeating a secret into the logs.
        for entry in value.split(","):
            secret = entry.partition(":")[2] or entry
            if len(secret) >= 5:
                assert secret not in message


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        pytest.param({}, "GATEWAY_JWT_SECRET", id="neither"),
        pytest.param({"GATEWAY_SERVICE_SECRET": SERVICE}, "GATEWAY_JWT_SECRET", id="no-jwt"),
        pytest.param({"GATEWAY_JWT_SECRET": JWT}, "GATEWAY_SERVICE_SECRET", id="no-service"),
        pytest.param(
            {"GATEWAY_JWT_SECRET": "", "GATEWAY_SERVICE_SECRET": SERVICE},
            "GATEWAY_JWT_SECRET",
            id="jwt-empty",
        ),
    ],
)
def test_postgresql_requires_both_secrets(env: dict[str, str], missing: str) -> None:
    with pytest.raises(SettingsError) as caught:
        AuthSettings.from_env({"GATEWAY_DATABASE_URL": POSTGRES, **env})
    message = str(caught.value)
    assert message.startswith(f"{missing}: ")
    assert "PostgreSQL" in message
    assert "pw@" not in message  # the database password is not echoed


@pytest.mark.parametrize("name", ["GATEWAY_JWT_ISSUER", "GATEWAY_JWT_AUDIENCE"])
def test_a_blank_issuer_or_audience_is_never_used(name: str) -> None:
    # An empty string means "unset" (the default); spaces alone must not make the claim "".
    settings: AuthSettings | None = None
    message = ""
    try:
        settings = AuthSettings.from_env({name: "   "})
    except SettingsError as exc:
        message = str(exc)
    if settings is None:
        assert message.startswith(f"{name}: ")
    else:
        assert settings.issuer
        assert settings.audience


def test_sqlite_needs_no_secrets() -> None:
    settings = AuthSettings.from_env({"GATEWAY_DATABASE_URL": "sqlite:///gw.db"})
    assert settings.embedded
    assert settings.jwt_keyring is None
