"""Node.js for the tests of the Node kit (kits/node) and the Express example: the `node`
binary (Debian's `nodejs`, which `.ci/run` installs) and a package's node_modules (installed by
scripts/test with `npm ci`). Without either the test is skipped, or fails under CI=true."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "kits" / "node"
EXPRESS_EXAMPLE = ROOT / "examples" / "express"


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def node_binary() -> str:
    """The node executable (GATEWAY_TEST_NODE names another)."""
    found = os.environ.get("GATEWAY_TEST_NODE") or shutil.which("node")
    if not found:
        _unavailable("Node.js is not installed (no `node` on PATH): apt-get install nodejs npm")
    assert found is not None
    return found


def installed(package: Path, *modules: str) -> Path:
    """`package` once `modules` are in its node_modules (scripts/test runs `npm ci` there)."""
    for module in modules:
        if not (package / "node_modules" / module / "package.json").is_file():
            _unavailable(f"{module} is not installed in {package}: run `npm ci` there")
    return package
