"""`gateway check-config [file]`, run as the operator runs it: a child process."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import cases

VALID = """\
version: 1
upstreams:
  echo:
    targets: ["http://127.0.0.1:9001"]
    timeout: 5s
routes:
  - {name: echo, path: /echo, upstream: echo, auth: none, strip_prefix: true}
  - {name: rest, path: /, upstream: echo, auth: none}
"""

INVALID = [
    # (description, file text, line, reason fragment)
    (
        "unknown upstream",
        VALID.replace("upstream: echo, auth: none, strip", "upstream: nope, auth: none, strip"),
        7,
        "unknown upstream 'nope'",
    ),
    ("unknown auth kind", VALID.replace("auth: none", "auth: basic", 1), 7, "'basic'"),
    ("non-canonical path", VALID.replace("/echo", "/echo/"), 7, "must be a canonical path"),
    ("bad duration", VALID.replace("5s", "5 parsecs"), 5, "is not a duration"),
    ("invalid YAML", VALID + "  - name: x\n    auth: none: x\n", 10, "not valid YAML"),
    ("empty file", "", 1, "the file is empty"),
]


def check_config(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        check=False,
    )


def test_valid_file(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(VALID)
    done = check_config(str(config))
    assert (done.returncode, done.stderr) == (0, "")
    sha256 = hashlib.sha256(VALID.encode()).hexdigest()
    assert done.stdout == f"{config}: ok (2 routes, 1 upstreams, sha256 {sha256})\n"


def test_default_file_is_routes_yaml_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(VALID)
    done = check_config(cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("routes.yaml: ok (")


@pytest.mark.parametrize(("text", "line", "fragment"), cases(INVALID))
def test_invalid_file(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(text)
    done = check_config(str(config))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"gateway: {config}:{line}: "), done.stderr
    assert fragment in done.stderr
    assert done.stderr.count("\n") == 1  # one line, no traceback


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    done = check_config(str(missing))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"gateway: {missing}:")
    assert "cannot read the file" in done.stderr
    assert "Traceback" not in done.stderr


def test_yaml_construction_error_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(VALID + "  - {<<: {name: x}, path: /x, upstream: echo, auth: none}\n")
    done = check_config(str(config))
    assert done.returncode == 1
    assert done.stderr.startswith(f"gateway: {config}:9: "), done.stderr
    assert "Traceback" not in done.stderr
