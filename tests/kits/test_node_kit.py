"""kits/node's own tests under Node's test runner (`node --test`): the verifier's unit tests,
its Express middleware on a real node:http server, index.d.ts through `tsc --noEmit`, and the
shared vectors (kits/vectors/context-v2.json) that the Python reference generated."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.node import KIT, installed, node_binary

VECTORS = KIT.parent / "vectors" / "context-v2.json"


def summary(output: str) -> dict[str, int]:
    """The `# pass 73`-style totals at the end of the runner's TAP output."""
    return {name: int(count) for name, count in re.findall(r"^# (\w+) (\d+)$", output, re.M)}


# tsc takes most of it: 8 s of CPU on the machine this was written on.
@pytest.mark.timeout(240)
def test_the_node_kit_passes_its_tests_and_the_shared_vectors() -> None:
    node = node_binary()
    installed(KIT, "typescript", "@types/express")
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", *sorted(map(str, KIT.glob("test/*.test.js")))],
        cwd=KIT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_OPTIONS": "", "CI": "true"},  # TypeScript missing: a failure
        check=False,
    )
    output = done.stdout + done.stderr
    totals = summary(output)
    assert done.returncode == 0, output[-6000:]
    assert totals["fail"] == 0, output[-6000:]
    assert totals["skipped"] == 0, output[-6000:]
    # Every vector ran as a test of its own (the names are the vectors' descriptions).
    cases = json.loads(VECTORS.read_text())["cases"]
    assert cases
    # TAP escapes `\\` and `#` in test names.
    names = re.sub(r"ok \d+ - ", "ok ", output).replace("\\#", "#").replace("\\\\", "\\")
    for case in cases:
        assert f"ok {case['description']}\n" in names, case
    assert totals["pass"] >= 60 + len(cases)
