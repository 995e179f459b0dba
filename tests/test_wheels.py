"""Wheels of the compiled build (docs/development.md: wheels): cibuildwheel's configuration in
pyproject.toml names Linux on x86-64 and arm64, and the wheel scripts/build-compiled makes here
is a compiled one that auditwheel finds within a manylinux policy."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

# resolve(): the compiled pass runs the tests from a directory of links to this checkout.
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_the_configuration_builds_cpython_311_to_313_for_linux_on_x86_64_and_arm64() -> None:
    listed = subprocess.run(
        [BIN / "cibuildwheel", "--print-build-identifiers", "--platform", "linux", str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert sorted(listed) == sorted(
        f"cp3{minor}-manylinux_{arch}" for minor in (11, 12, 13) for arch in ("x86_64", "aarch64")
    )


@pytest.mark.skipif(
    os.environ.get("GATEWAY_TEST_COMPILED") != "1",
    reason="the wheel is scripts/build-compiled's: checked in scripts/test's compiled pass",
)
def test_the_compiled_build_was_installed_from_a_manylinux_compatible_wheel() -> None:
    wheels = sorted((Path(sys.prefix) / "wheels").glob("gateway-*.whl"))
    assert len(wheels) == 1, wheels
    wheel = wheels[0]
    tag = f"cp3{sys.version_info.minor}-cp3{sys.version_info.minor}-linux_{platform.machine()}"
    assert wheel.name.endswith(f"-{tag}.whl"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    # The request path is in it as extension modules (setup.py's list), beside the sources.
    assert any(name.startswith("gateway/pipeline/chain.cpython-") for name in names)
    assert any(name.endswith(".so") and "/" not in name for name in names)  # mypyc's runtime
    # What is installed is that wheel: a platform wheel, not the pure package.
    installed = metadata.distribution("gateway").read_text("WHEEL") or ""
    assert "Root-Is-Purelib: false" in installed
    assert f"Tag: {tag}" in installed
    # auditwheel reads the extensions' symbol versions and libraries: the wheel keeps to a
    # manylinux policy, so cibuildwheel's repair step would tag it manylinux, not refuse it.
    shown = subprocess.run(
        [BIN / "auditwheel", "show", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "consistent with the following platform tag" in " ".join(shown.split()), shown
    assert "manylinux_" in shown, shown
