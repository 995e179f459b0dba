"""A worked example's README run as written: its ```sh blocks become one bash script, run in
a copy of the example's folder, with the ports it names swapped for free ones.

`pip install` lines are left out (the test environment has the packages; the kits are put on
PYTHONPATH instead of installed) and so is the `cd` into the example (the script runs in the
copy). A line that starts a server (`uvicorn ...`, `gateway serve ...`) runs in the
background, and the script waits until the server answers before going on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support import command_environment, free_port

ROOT = Path(__file__).resolve().parents[2]
KITS = [ROOT / "kits" / "python" / "asgi", ROOT / "kits" / "python" / "django"]
SERVERS = ("uvicorn ", "gateway serve ")


def commands(readme: str) -> list[str]:
    """The commands of the README's ```sh blocks, continuation lines joined."""
    found: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip():
                found.append(command.strip())
    return found


@dataclass
class Run:
    script: str
    output: subprocess.CompletedProcess[str]
    logs: str  # what the servers wrote

    def explain(self) -> str:
        output = self.output
        return (
            f"{self.script}\n--- stdout\n{output.stdout}\n--- stderr\n{output.stderr}\n{self.logs}"
        )


def run_readme(example: Path, directory: Path, ports: tuple[str, ...] = ()) -> Run:
    """Run the README of `example` (a folder of examples/) in a copy of it under
    `directory`, each port of `ports` (as written in the README) swapped for a free one."""
    copy = directory / example.name
    shutil.copytree(example, copy)
    swaps = {port: str(free_port()) for port in ports}
    for path in copy.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".py", ".md"):
            text = path.read_text()
            for old, new in swaps.items():
                text = text.replace(old, new)
            path.write_text(text)
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for command in commands((copy / "README.md").read_text()):
        if command.startswith("pip install") or command.startswith("cd examples/"):
            continue
        if command.startswith(SERVERS):
            port = re.search(r"--port (\d+)", command)
            assert port, f"a server without --port: {command}"
            lines.append(f"{command} > server-{port.group(1)}.log 2>&1 &")
            lines.append(wait_for(int(port.group(1))))
        else:
            lines.append(command)
    script = "\n".join(lines) + "\n"
    bin_dir = str(Path(sys.executable).parent)
    environment = command_environment(
        copy,
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(str(path) for path in KITS),
        GATEWAY_ACCESS_LOG="off",
    )
    # The README's own database (./gateway.db of the folder), as a developer gets it.
    environment.pop("GATEWAY_DATABASE_URL")
    output = subprocess.run(
        ["bash", "-c", script],
        cwd=copy,
        env=environment,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    logs = "".join(f"--- {log.name}\n{log.read_text()}" for log in copy.glob("server-*.log"))
    return Run(script, output, logs)


def wait_for(port: int) -> str:
    """A bash loop until something answers HTTP on `port` (about 20 s at most)."""
    return (
        f"for _ in $(seq 1 200); do curl -s -o /dev/null http://127.0.0.1:{port}/ && break; "
        f"sleep 0.1; done"
    )
