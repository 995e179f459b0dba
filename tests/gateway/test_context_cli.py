"""`gateway context-key UPSTREAM`, run as the operator runs it (a child process): the keys a
downstream service is configured with, one `kid:<base64url key>` line per
GATEWAY_SERVICE_SECRET entry, for that upstream alone."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
from pathlib import Path

from auth_core.service import AuthCore
from gateway.context import parse_keys
from tests.support import auth_settings, gateway_command

ROUTES = """\
version: 1
upstreams:
  billing: {targets: ["http://127.0.0.1:9001"]}
  orders: {targets: ["http://127.0.0.1:9002"]}
routes:
  - {name: billing, path: /billing, upstream: billing, auth: jwt}
"""
SECRET = "k1:worked-example-secret-not-for-production,k0:the-previous-secret-still-verifying-!!"


def context_key(
    tmp_path: Path, *args: str, secret: str | None = SECRET
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "routes.yaml"
    if not config.exists():
        config.write_text(ROUTES)
    env = {key: value for key, value in os.environ.items() if not key.startswith("GATEWAY_")} | {
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
        "GATEWAY_LOG_LEVEL": "error",
    }
    if secret is not None:
        env["GATEWAY_SERVICE_SECRET"] = secret
    return gateway_command(tmp_path, env, "context-key", *args, "--config", str(config))


def by_hand(secret: bytes, audience: str) -> str:
    key = hmac.new(secret, b"gateway context v2\n" + audience.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def test_one_line_per_secret_entry_the_current_first(tmp_path: Path) -> None:
    done = context_key(tmp_path, "billing")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "k1:4gLyJXbBztlYdSFfamzMSVFH1r1M6wGb8XQZtI7qYMw",  # docs/upstream-services.md
        "k0:" + by_hand(b"the-previous-secret-still-verifying-!!", "billing"),
    ]
    assert set(parse_keys(done.stdout)) == {"k1", "k0"}


def test_each_upstream_gets_other_keys(tmp_path: Path) -> None:
    billing = context_key(tmp_path, "billing").stdout
    orders = context_key(tmp_path, "orders").stdout
    assert orders.splitlines()[0] == "k1:" + by_hand(
        b"worked-example-secret-not-for-production", "orders"
    )
    assert not set(billing.splitlines()) & set(orders.splitlines())
    assert "worked-example-secret" not in billing + orders


def test_forward_auth_is_an_audience_too(tmp_path: Path) -> None:
    done = context_key(tmp_path, "forward_auth")
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "k1:" + by_hand(
        b"worked-example-secret-not-for-production", "forward_auth"
    )


def test_a_name_that_is_not_an_upstream_is_refused(tmp_path: Path) -> None:
    for name in ("payments", "auth_core", "Billing"):
        done = context_key(tmp_path, name)
        assert done.returncode == 1, name
        assert done.stdout == ""
        assert f"'{name}' is not an upstream of" in done.stderr
        assert "billing, orders" in done.stderr


def test_a_bad_config_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text("version: 1\nupstreams: [1]\n")
    done = context_key(tmp_path, "billing")
    assert done.returncode == 1
    assert "routes.yaml:2" in done.stderr
    assert done.stdout == ""


async def test_embedded_mode_prints_the_keys_of_the_stored_secret(tmp_path: Path) -> None:
    """Without GATEWAY_SERVICE_SECRET the embedded gateway signs with a secret generated once
    and stored in its database: the command prints that secret's keys."""
    done = context_key(tmp_path, "orders", secret=None)
    assert done.returncode == 0, done.stderr
    core = AuthCore(auth_settings(tmp_path, database_url=f"sqlite:///{tmp_path}/gateway.db"))
    await core.start(follow=False)
    try:
        assert core.service_keyring is not None
        [(kid, secret)] = core.service_keyring.keys
    finally:
        await core.close()
    assert done.stdout == f"{kid}:{by_hand(secret, 'orders')}\n"
