"""Settings from the environment: defaults, every variable parsed, every bad value named."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import netaddr
import pytest

from gateway.config import Settings, SettingsError

KIB = 1024


def test_an_empty_environment_gives_the_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.trusted_proxies == netaddr.IPSet()
    assert settings.header_timeout == 10.0
    assert settings.keepalive_timeout == 75.0
    assert settings.body_timeout == 60.0
    assert settings.max_header_size == 32 * KIB
    assert settings.max_headers == 100
    assert settings.max_connections_per_address == 256
    assert settings.drain_timeout == 30.0
    assert settings.access_log == "stdout"
    assert settings.log_level == "INFO"
    assert settings.reload_interval == 1.0
    assert settings.watch_config is True


def test_empty_values_and_other_variables_are_ignored() -> None:
    environ = {
        "GATEWAY_HEADER_TIMEOUT": "",
        "GATEWAY_TRUSTED_PROXIES": "",
        "GATEWAY_UNKNOWN_THING": "whatever",
        "PATH": "/usr/bin",
    }
    assert Settings.from_env(environ) == Settings()


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_BODY_TIMEOUT", "2s")
    assert Settings.from_env().body_timeout == 2.0


PARSED = [
    # durations
    pytest.param("GATEWAY_HEADER_TIMEOUT", "500ms", "header_timeout", 0.5, id="duration-ms"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "2s", "header_timeout", 2.0, id="duration-s"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "2 s", "header_timeout", 2.0, id="duration-space"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "3", "header_timeout", 3.0, id="duration-bare"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "1.5", "header_timeout", 1.5, id="duration-decimal"),
    pytest.param("GATEWAY_KEEPALIVE_TIMEOUT", "15m", "keepalive_timeout", 900.0, id="duration-m"),
    pytest.param("GATEWAY_KEEPALIVE_TIMEOUT", "1h", "keepalive_timeout", 3600.0, id="duration-h"),
    pytest.param("GATEWAY_BODY_TIMEOUT", "2.5s", "body_timeout", 2.5, id="body-timeout"),
    pytest.param("GATEWAY_DRAIN_TIMEOUT", "1d", "drain_timeout", 86400.0, id="duration-d"),
    pytest.param("GATEWAY_RELOAD_INTERVAL", "200ms", "reload_interval", 0.2, id="reload-interval"),
    # sizes
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "16k", "max_header_size", 16 * KIB, id="size-k"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "16K", "max_header_size", 16 * KIB, id="size-upper"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "16kb", "max_header_size", 16 * KIB, id="size-kb"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "16KiB", "max_header_size", 16 * KIB, id="size-kib"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "1m", "max_header_size", KIB * KIB, id="size-m"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "8192", "max_header_size", 8192, id="size-bytes"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "100b", "max_header_size", 100, id="size-b"),
    # counts
    pytest.param("GATEWAY_MAX_HEADERS", "50", "max_headers", 50, id="count"),
    pytest.param("GATEWAY_MAX_HEADERS", "1", "max_headers", 1, id="count-minimum"),
    pytest.param(
        "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS",
        "64",
        "max_connections_per_address",
        64,
        id="connections-per-address",
    ),
    pytest.param(
        "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS",
        "0",
        "max_connections_per_address",
        0,
        id="connections-per-address-unlimited",
    ),
    # words
    pytest.param("GATEWAY_ACCESS_LOG", "off", "access_log", "off", id="access-log-off"),
    pytest.param("GATEWAY_ACCESS_LOG", " stdout ", "access_log", "stdout", id="access-log-stdout"),
    pytest.param(
        "GATEWAY_ACCESS_LOG", "/var/log/gw.log", "access_log", "/var/log/gw.log", id="access-file"
    ),
    pytest.param("GATEWAY_LOG_LEVEL", "debug", "log_level", "DEBUG", id="log-level-lower"),
    pytest.param("GATEWAY_LOG_LEVEL", "WARNING", "log_level", "WARNING", id="log-level-upper"),
    # booleans
    *(
        pytest.param("GATEWAY_WATCH_CONFIG", word, "watch_config", False, id=f"false-{word}")
        for word in ("false", "FALSE", "0", "no", "off", " Off ")
    ),
    *(
        pytest.param("GATEWAY_WATCH_CONFIG", word, "watch_config", True, id=f"true-{word}")
        for word in ("true", "True", "1", "yes", "on")
    ),
]


@pytest.mark.parametrize(("name", "value", "attribute", "expected"), PARSED)
def test_each_variable_is_parsed(name: str, value: str, attribute: str, expected: object) -> None:
    settings = Settings.from_env({name: value})
    assert getattr(settings, attribute) == expected
    # Nothing else moved.
    others = [field.name for field in fields(Settings) if field.name != attribute]
    assert [getattr(settings, name) for name in others] == [
        getattr(Settings(), name) for name in others
    ]


CIDRS = [
    pytest.param("10.0.0.0/8", ["10.1.2.3"], ["11.0.0.1", "127.0.0.1"], id="one-v4-network"),
    pytest.param(
        "10.0.0.0/8, 192.168.1.1", ["10.9.9.9", "192.168.1.1"], ["192.168.1.2"], id="list-spaced"
    ),
    pytest.param("10.0.0.0/8,,", ["10.0.0.1"], ["9.9.9.9"], id="empty-items-skipped"),
    pytest.param("::1/128,2001:db8::/32", ["::1", "2001:db8::5"], ["2001:db9::1"], id="ipv6"),
    pytest.param("127.0.0.1", ["127.0.0.1"], ["127.0.0.2"], id="bare-address"),
]


@pytest.mark.parametrize(("value", "inside", "outside"), CIDRS)
def test_trusted_proxies_are_parsed_into_an_ipset(
    value: str, inside: list[str], outside: list[str]
) -> None:
    proxies = Settings.from_env({"GATEWAY_TRUSTED_PROXIES": value}).trusted_proxies
    assert isinstance(proxies, netaddr.IPSet)
    assert all(netaddr.IPAddress(address) in proxies for address in inside)
    assert not any(netaddr.IPAddress(address) in proxies for address in outside)


BAD = [
    pytest.param("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/33", id="proxies-prefix-too-long"),
    pytest.param("GATEWAY_TRUSTED_PROXIES", "not-an-ip", id="proxies-word"),
    pytest.param("GATEWAY_TRUSTED_PROXIES", "1.2.3", id="proxies-short-address"),
    pytest.param("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8 192.168.0.0/16", id="proxies-spaces"),
    pytest.param("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8,bogus", id="proxies-one-bad-item"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "abc", id="duration-word"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "0", id="duration-zero"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "0ms", id="duration-zero-ms"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "-1s", id="duration-negative"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "10x", id="duration-unknown-unit"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "ms", id="duration-unit-only"),
    pytest.param("GATEWAY_HEADER_TIMEOUT", "1e3", id="duration-exponent"),
    pytest.param("GATEWAY_KEEPALIVE_TIMEOUT", "abc", id="keepalive-word"),
    pytest.param("GATEWAY_BODY_TIMEOUT", "0s", id="body-timeout-zero"),
    pytest.param("GATEWAY_DRAIN_TIMEOUT", "soon", id="drain-word"),
    pytest.param("GATEWAY_RELOAD_INTERVAL", "0ms", id="reload-zero"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "0", id="size-zero"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "16q", id="size-unknown-unit"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "-5", id="size-negative"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "1.5k", id="size-fraction"),
    pytest.param("GATEWAY_MAX_HEADER_SIZE", "lots", id="size-word"),
    pytest.param("GATEWAY_MAX_HEADERS", "0", id="count-zero"),
    pytest.param("GATEWAY_MAX_HEADERS", "-3", id="count-negative"),
    pytest.param("GATEWAY_MAX_HEADERS", "abc", id="count-word"),
    pytest.param("GATEWAY_MAX_HEADERS", "1.5", id="count-fraction"),
    pytest.param("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "-1", id="connections-negative"),
    pytest.param("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "lots", id="connections-word"),
    pytest.param("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "2.5", id="connections-fraction"),
    pytest.param("GATEWAY_ACCESS_LOG", "   ", id="access-log-blank"),
    pytest.param("GATEWAY_LOG_LEVEL", "verbose", id="log-level-unknown"),
    pytest.param("GATEWAY_LOG_LEVEL", "critical", id="log-level-unsupported"),
    pytest.param("GATEWAY_WATCH_CONFIG", "maybe", id="boolean-word"),
    pytest.param("GATEWAY_WATCH_CONFIG", "2", id="boolean-number"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_a_bad_value_raises_an_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}:")
    assert len(message) > len(name) + 2  # and says what is wrong


def test_the_first_bad_variable_is_named_and_good_ones_do_not_hide_it() -> None:
    environ = {"GATEWAY_HEADER_TIMEOUT": "2s", "GATEWAY_MAX_HEADERS": "many"}
    with pytest.raises(SettingsError, match=r"^GATEWAY_MAX_HEADERS:"):
        Settings.from_env(environ)


def test_settings_error_is_a_value_error() -> None:
    # Callers that catch ValueError around configuration keep working.
    assert issubclass(SettingsError, ValueError)


# -- TLS (docs/tls.md) --------------------------------------------------------------------------


@pytest.fixture
def pem_files(tmp_path: Path) -> tuple[Path, Path]:
    """Two files that exist (their content is the certificate loader's business, tested in
    tests/gateway/tls)."""
    cert, key = tmp_path / "a.crt", tmp_path / "a.key"
    cert.write_text("cert")
    key.write_text("key")
    return cert, key


def test_tls_settings_are_parsed(pem_files: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = pem_files
    settings = Settings.from_env(
        {
            "GATEWAY_TLS_CERT_FILE": str(cert),
            "GATEWAY_TLS_KEY_FILE": str(key),
            "GATEWAY_HTTP_REDIRECT_PORT": "80",
            "GATEWAY_HSTS_MAX_AGE": "365d",
        }
    )
    assert (settings.tls_cert_file, settings.tls_key_file) == (cert, key)
    assert settings.http_redirect_port == 80
    assert settings.hsts_max_age == 31536000
    assert settings.tls is True
    by_dir = Settings.from_env({"GATEWAY_TLS_DIR": str(tmp_path)})
    assert by_dir.tls_dir == tmp_path
    assert by_dir.tls is True
    assert Settings().tls is False


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param(
            {"GATEWAY_TLS_CERT_FILE": "{dir}/nope.crt", "GATEWAY_TLS_KEY_FILE": "{key}"},
            "GATEWAY_TLS_CERT_FILE: '{dir}/nope.crt' is not a readable file",
            id="no such certificate",
        ),
        pytest.param(
            {"GATEWAY_TLS_CERT_FILE": "{cert}"},
            "GATEWAY_TLS_KEY_FILE: required with GATEWAY_TLS_CERT_FILE (the certificate and "
            "its key)",
            id="a certificate without its key",
        ),
        pytest.param(
            {"GATEWAY_TLS_DIR": "{cert}"},
            "GATEWAY_TLS_DIR: '{cert}' is not a directory",
            id="a file as the directory",
        ),
        pytest.param(
            {
                "GATEWAY_TLS_CERT_FILE": "{cert}",
                "GATEWAY_TLS_KEY_FILE": "{key}",
                "GATEWAY_TLS_DIR": "{dir}",
            },
            "GATEWAY_TLS_DIR: set either it (certificates by host name, one named default) or "
            "GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE (one certificate), not both",
            id="both ways at once",
        ),
        pytest.param(
            {"GATEWAY_HTTP_REDIRECT_PORT": "80"},
            "GATEWAY_HTTP_REDIRECT_PORT: needs TLS on the listener (GATEWAY_TLS_CERT_FILE or "
            "GATEWAY_TLS_DIR)",
            id="a redirect without TLS",
        ),
        pytest.param(
            {"GATEWAY_HSTS_MAX_AGE": "1d"},
            "GATEWAY_HSTS_MAX_AGE: needs TLS on the listener (GATEWAY_TLS_CERT_FILE or "
            "GATEWAY_TLS_DIR)",
            id="HSTS without TLS",
        ),
        pytest.param(
            {"GATEWAY_TLS_DIR": "{dir}", "GATEWAY_HTTP_REDIRECT_PORT": "70000"},
            "GATEWAY_HTTP_REDIRECT_PORT: '70000' is not a port number (1-65535)",
            id="a port out of range",
        ),
    ],
)
def test_bad_tls_settings_are_named(
    pem_files: tuple[Path, Path], tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    cert, key = pem_files
    values = {"dir": str(tmp_path), "cert": str(cert), "key": str(key)}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value.format(**values) for name, value in environ.items()})
    assert str(caught.value) == message.format(**values)
