"""An upstream's `tls` block at load (docs/routes.md: `tls`): every file read and
checked, every mistake `file:line: reason`, the context made once with TLS 1.2 at least."""

from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from auth_core.errors import SettingsError
from gateway.routing.loader import load_route_table
from tests.tls_authority import TestAuthority


def write_routes(directory: Path, tls_lines: list[str], target: str = "https://10.0.0.1") -> Path:
    """routes.yaml with upstream `up` on `target`; `tls_lines` go under its `tls:` (line 6 on)."""
    lines = ["version: 1", "upstreams:", "  up:", f"    targets: [{json.dumps(target)}]"]
    if tls_lines:
        lines.append("    tls:")  # line 5
        lines += [f"      {line}" for line in tls_lines]
    lines += ["routes:", "  - {name: up, path: /, upstream: up, auth: none}"]
    path = directory / "routes.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """The files the cases name, by the placeholders they use."""
    authority = TestAuthority(tmp_path)
    client = authority.issue("client", client=True)
    other = authority.issue("other", client=True)
    locked = authority.issue("locked", client=True, passphrase=b"secret")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    return {
        "tmp": tmp_path,
        "ca": authority.path,
        "junk": junk,
        "client_cert": client.cert,
        "client_key": client.key,
        "other_cert": other.cert,
        "other_key": other.key,
        "locked_cert": locked.cert,
        "locked_key": locked.key,
    }


@dataclass(frozen=True)
class Case:
    """`tls` lines (with {placeholders} for files), the line and a part of the reason."""

    description: str
    tls: list[str]
    line: int
    reason: str
    target: str = "https://10.0.0.1"


CASES = [
    Case(
        "a ca_file that does not exist",
        ["ca_file: {tmp}/nowhere.pem"],
        6,
        "upstreams.up.tls.ca_file: cannot read {tmp}/nowhere.pem: No such file",
    ),
    Case(
        "a ca_file that cannot be read (a directory)",
        ["ca_file: {tmp}"],
        6,
        "upstreams.up.tls.ca_file: cannot read {tmp}: Is a directory",
    ),
    Case(
        "a ca_file with no certificate in it",
        ["ca_file: {junk}"],
        6,
        "upstreams.up.tls.ca_file: no PEM certificate in {junk}",
    ),
    Case(
        "a cert_file that is not a certificate",
        ["cert_file: {junk}", "key_file: {client_key}"],
        6,
        "upstreams.up.tls.cert_file: {junk} is not a PEM certificate",
    ),
    Case(
        "a key_file that is not a key",
        ["cert_file: {client_cert}", "key_file: {junk}"],
        7,
        "upstreams.up.tls.key_file: {junk} is not a PEM private key",
    ),
    Case(
        "a key that does not match its certificate",
        ["cert_file: {client_cert}", "key_file: {other_key}"],
        7,
        "upstreams.up.tls.key_file: {other_key} is not the private key of cert_file's certificate",
    ),
    Case(
        "an encrypted key (it would prompt for a passphrase)",
        ["cert_file: {locked_cert}", "key_file: {locked_key}"],
        7,
        "upstreams.up.tls.key_file: {locked_key} is encrypted",
    ),
    Case(
        "a key_file that does not exist",
        ["cert_file: {client_cert}", "key_file: {tmp}/gone.key"],
        7,
        "upstreams.up.tls.key_file: cannot read {tmp}/gone.key: No such file",
    ),
    Case(
        "a cert_file without its key_file",
        ["cert_file: {client_cert}"],
        6,
        "cert_file and key_file go together",
    ),
    Case(
        "a key_file without its cert_file",
        ["verify: true", "key_file: {client_key}"],
        7,
        "cert_file and key_file go together",
    ),
    Case(
        "a tls block on an http:// upstream",
        ["ca_file: {ca}"],
        4,
        "'http://10.0.0.1' is http:// but the upstream has a 'tls' block (line 5)",
        target="http://10.0.0.1",
    ),
    Case(
        "ca_file with verify: false",
        ["verify: false", "ca_file: {ca}"],
        7,
        "ca_file with verify: false",
    ),
    Case("verify that is not a boolean", ["verify: maybe"], 6, "verify must be true or false"),
    Case(
        "a server_name that is no DNS name",
        ["server_name: 'api example.com'"],
        6,
        "'api example.com' is not a DNS name",
    ),
    Case("an unknown key", ["ca_flie: x.pem"], 6, "unknown key 'ca_flie'"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.description for case in CASES])
def test_mistakes_are_refused_with_file_and_line(
    case: Case, files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tls = [line.format(**files) for line in case.tls]
    path = write_routes(tmp_path, tls, case.target)
    with pytest.raises(SettingsError) as caught:
        load_route_table(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{case.line}: "), message
    assert case.reason.format(**files) in message
    assert "Traceback" not in caplog.text


def test_a_tls_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "version: 1\nupstreams:\n  up:\n    targets: ['https://10.0.0.1']\n"
        "    tls: [ca_file]\nroutes:\n  - {name: up, path: /, upstream: up, auth: none}\n"
    )
    with pytest.raises(SettingsError, match=r"routes.yaml:5: upstreams.up.tls must be a mapping"):
        load_route_table(path)


def test_relative_paths_are_read_from_the_directory_of_routes_yaml(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    tls = ["ca_file: test-ca.pem", "cert_file: client.crt", "key_file: client.key"]
    table = load_route_table(write_routes(tmp_path, tls))
    upstream_tls = table.upstreams["up"].tls
    assert upstream_tls is not None
    assert upstream_tls.context.verify_mode == ssl.CERT_REQUIRED


def test_a_ca_bundle_with_comments_in_any_language_loads(
    files: dict[str, Path], tmp_path: Path
) -> None:
    # Bundles put each certificate's issuer above it, in its own language.
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        "# Issuer: CN=NetLock Arany (Class Gold) Főtanúsítvány\n".encode()
        + files["ca"].read_bytes()
    )
    upstream_tls = (
        load_route_table(write_routes(tmp_path, [f"ca_file: {bundle}"])).upstreams["up"].tls
    )
    assert upstream_tls is not None
    assert len(upstream_tls.context.get_ca_certs()) == 1


def test_the_context_verifies_and_needs_tls_1_2(files: dict[str, Path], tmp_path: Path) -> None:
    tls = [f"ca_file: {files['ca']}", "server_name: API.Internal"]
    upstream_tls = load_route_table(write_routes(tmp_path, tls)).upstreams["up"].tls
    assert upstream_tls is not None
    context = upstream_tls.context
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert upstream_tls.server_name == "api.internal"
    assert upstream_tls.server_hostname("10.0.0.1") == "api.internal"
    # Only the test CA is trusted: none of the system's.
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "Gateway test-ca"),),)
    ]


def test_https_upstreams_without_tls_share_one_verifying_context(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "version: 1\nupstreams:\n"
        "  a: {targets: ['https://a.internal']}\n"
        "  b: {targets: ['https://b.internal:8443']}\n"
        "  plain: {targets: ['http://c.internal']}\n"
        "routes:\n  - {name: a, path: /, upstream: a, auth: none}\n"
    )
    upstreams = load_route_table(path).upstreams
    a, b = upstreams["a"].tls, upstreams["b"].tls
    assert a is not None
    assert b is not None
    assert a.context is b.context
    assert a.context.verify_mode == ssl.CERT_REQUIRED
    assert a.context.check_hostname
    assert a.server_hostname("a.internal") == "a.internal"
    assert upstreams["plain"].tls is None


def test_verify_false_is_a_warning_with_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "gateway.routing")
    path = write_routes(tmp_path, ["server_name: api.internal", "verify: false"])
    upstream_tls = load_route_table(path).upstreams["up"].tls
    assert upstream_tls is not None
    assert upstream_tls.context.verify_mode == ssl.CERT_NONE
    warnings = [r for r in caplog.records if r.name == "gateway.routing"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert warnings[0].getMessage().startswith(f"{path}:7: upstreams.up.tls.verify is false")


def test_a_renewed_file_changes_the_fingerprint(files: dict[str, Path], tmp_path: Path) -> None:
    key = tmp_path / "current.key"
    cert = tmp_path / "current.crt"
    cert.write_bytes(files["client_cert"].read_bytes())
    key.write_bytes(files["client_key"].read_bytes())
    path = write_routes(tmp_path, [f"cert_file: {cert}", f"key_file: {key}"])
    before = load_route_table(path)
    assert load_route_table(path).tls_fingerprints == before.tls_fingerprints
    cert.write_bytes(files["other_cert"].read_bytes())
    key.write_bytes(files["other_key"].read_bytes())
    after = load_route_table(path)
    assert after.sha256 == before.sha256
    assert after.tls_fingerprints != before.tls_fingerprints


def test_the_documented_example_loads(files: dict[str, Path], tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[3] / "docs" / "routes.md").read_text()
    example = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    for placeholder, real in [
        ("/etc/gateway/internal-ca.pem", files["ca"]),
        ("/etc/gateway/gateway.crt", files["client_cert"]),
        ("/etc/gateway/gateway.key", files["client_key"]),
    ]:
        assert placeholder in example
        example = example.replace(placeholder, str(real))
    path = tmp_path / "routes.yaml"
    path.write_text(example)
    upstream_tls = load_route_table(path).upstreams["billing"].tls
    assert upstream_tls is not None
    assert upstream_tls.server_name == "billing.internal"
    assert upstream_tls.verify
