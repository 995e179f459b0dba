"""deploy/compose.yaml run as processes of this machine, the way Docker Compose would run them,
for tests/deploy/test_compose_processes.py (no container engine runs on these machines).

Everything comes from the compose file (and the Dockerfile, for the gateway image's own ENV):
each service's command, its environment (the image's ENV, then `env_file`, then
`environment`), its health check, and the start order of `depends_on`. What a container
network would do is done by translating addresses, and nothing else:

- `SERVICE:PORT` -> `127.0.0.1:<a free port>` for every port a service listens on (its
  `--port`, the container side of its `ports:`); in the service's own command, health check
  and mounted files `127.0.0.1:PORT`, `*:PORT`, `0.0.0.0` likewise (it binds loopback);
- the compose network's subnet -> 127.0.0.0/8, a service's fixed address -> 127.0.0.1 (every
  process connects from there);
- a mounted path -> the file or directory it mounts (a named volume: a directory of its own);
- the executables: `gateway` -> this Python's `-m gateway`, `python` -> this Python, others
  (haproxy) the machine's binary.

The services whose image is PostgreSQL's or Redis's are not started: the machine's servers
(127.0.0.1:5432 and :6379) stand in, their health checks run as written, and the gateway's
database URL names a fresh database of the test's (role `postgres`: the machine's server
trusts loopback). The gateways get a Redis key prefix of the test's own, since other tests
share that Redis.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.support import LOOPBACK, free_port

MACHINE_IMAGES = {"postgres": 5432, "redis": 6379}  # image name -> the machine's server's port
LOOPBACK_NET = "127.0.0.0/8"
HEALTH_TIMEOUT = 60.0  # seconds a dependency may take to become healthy (a bound, not a figure)


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as Compose reads an env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def image_env(dockerfile: Path) -> dict[str, str]:
    """The ENV of the Dockerfile's last stage (what every container of the image starts with)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stages = re.split(r"^FROM\s", text, flags=re.MULTILINE)
    values: dict[str, str] = {}
    for line in stages[-1].splitlines():
        if line.startswith("ENV "):
            for item in shlex.split(line[len("ENV ") :]):
                name, _, value = item.partition("=")
                values[name] = value
    return values


def image_name(service: dict[str, Any]) -> str:
    return str(service.get("image", "")).split(":")[0].split("/")[-1]


def listen_ports(service: dict[str, Any]) -> list[int]:
    """The container ports a service listens on: its `--port`, the container side of `ports:`."""
    ports = []
    command = [str(arg) for arg in service.get("command", [])]
    if "--port" in command:
        ports.append(int(command[command.index("--port") + 1]))
    for mapping in service.get("ports", []):
        ports.append(int(str(mapping).rsplit(":", 1)[-1]))
    return sorted(set(ports))


def start_order(services: dict[str, dict[str, Any]]) -> list[str]:
    """Services after everything they depend on (Compose's order)."""
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {path}"
        if name in done:
            return
        for dependency in services[name].get("depends_on", {}):
            visit(dependency, (*path, name))
        done.append(name)

    for name in services:
        visit(name, ())
    return done


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class ComposeRun:
    """The set-up of `compose` (parsed deploy/compose.yaml), in `directory` (a copy of deploy/
    with its secrets made)."""

    compose: dict[str, Any]
    directory: Path
    dockerfile: Path
    database: str  # the fresh database's name
    redis_prefix: str
    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        services = self.compose["services"]
        for name, service in services.items():
            machine = MACHINE_IMAGES.get(image_name(service))
            if machine is not None:
                self.ports[(name, machine)] = machine
            for port in listen_ports(service):
                self.ports[(name, port)] = free_port()
        (self.directory / ".run").mkdir()

    # -- translation ----------------------------------------------------------------------

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return dict(self.compose["services"])

    def port(self, service: str, container_port: int) -> int:
        return self.ports[(service, container_port)]

    def mounts(self, name: str) -> dict[str, Path]:
        """Container path -> host path, for the service's volumes."""
        found = {}
        for volume in self.services[name].get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if source.startswith((".", "/")):
                path = (self.directory / source).resolve()
                assert path.exists(), f"{name} mounts {source}, which is not there"
            else:  # a named volume
                assert source in self.compose.get("volumes", {}), f"undeclared volume {source}"
                path = self.directory / ".run" / "volumes" / source
                path.mkdir(parents=True, exist_ok=True)
            found[target] = path
        return found

    def translate(self, text: str, own: str) -> str:
        for (service, port), host_port in self.ports.items():
            text = re.sub(
                rf"(?<![\w.-]){re.escape(service)}:{port}(?!\d)", f"{LOOPBACK}:{host_port}", text
            )
            if service == own:
                text = re.sub(
                    rf"(?:127\.0\.0\.1|\*|0\.0\.0\.0):{port}(?!\d)", f"{LOOPBACK}:{host_port}", text
                )
        for network in self.compose.get("networks", {}).values():
            for pool in (network or {}).get("ipam", {}).get("config", []):
                text = text.replace(pool["subnet"], LOOPBACK_NET)
        for service in self.services.values():
            for network in (service.get("networks") or {}).values():
                if network and "ipv4_address" in network:
                    text = text.replace(network["ipv4_address"], LOOPBACK)
        for target, path in sorted(self.mounts(own).items(), key=lambda item: -len(item[0])):
            text = text.replace(target, str(path))
        return text

    def command(self, name: str, args: list[Any]) -> list[str]:
        """A command of the service (its `command`, or a health check's), translated."""
        words = [self.translate(str(arg), name) for arg in args]
        for index, word in enumerate(words[:-1]):
            if word == "--port":
                words[index + 1] = str(self.port(name, int(words[index + 1])))
        words = [LOOPBACK if word == "0.0.0.0" else word for word in words]
        program, rest = words[0], words[1:]
        if program == "gateway":
            return [sys.executable, "-m", "gateway", *rest]
        if program == "python":
            return [sys.executable, *rest]
        binary = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin")
        assert binary is not None, f"{program} (service {name}) is not installed"
        return [binary, *rest]

    def environment(self, name: str) -> dict[str, str]:
        """The image's ENV, then env_file, then environment; translated."""
        service = self.services[name]
        values: dict[str, str] = {}
        if "build" in service:
            values.update(image_env(self.dockerfile))
        for path in service.get("env_file", []):
            values.update(env_file(self.directory / str(path)))
        values.update({key: str(value) for key, value in service.get("environment", {}).items()})
        values = {key: self.translate(value, name) for key, value in values.items()}
        if values.get("GATEWAY_DATABASE_URL", "").startswith("postgresql:"):
            values["GATEWAY_DATABASE_URL"] = self.machine_database(values["GATEWAY_DATABASE_URL"])
        if "GATEWAY_REDIS_URL" in values:
            values["GATEWAY_REDIS_PREFIX"] = self.redis_prefix
        # What a container has without being told: a PATH (and the test's own Python).
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **values}

    def machine_database(self, url: str) -> str:
        """The compose file's PostgreSQL URL on the machine's server: the fresh database, as
        the role `postgres` (the compose file's role and password do not exist there)."""
        parts = urlsplit(url)
        assert parts.hostname == LOOPBACK, f"not the postgres service: {url}"
        return urlunsplit(
            (parts.scheme, f"postgres@{parts.hostname}:{parts.port}", f"/{self.database}", "", "")
        )

    # -- running --------------------------------------------------------------------------

    def run_healthcheck(self, name: str) -> subprocess.CompletedProcess[bytes]:
        test = self.services[name]["healthcheck"]["test"]
        assert test[0] == "CMD", f"{name}: a CMD health check (no shell in the image needed)"
        return subprocess.run(
            self.command(name, test[1:]),
            env=self.environment(name),
            cwd=self.directory / ".run",
            capture_output=True,
            timeout=30,
            check=False,
        )

    def wait_healthy(self, name: str) -> None:
        """Run the health check until it passes (a bounded poll, as Compose's retries)."""
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while True:
            process = self.processes.get(name)
            if process is not None and process.process.poll() is not None:
                raise AssertionError(f"{name} exited:\n{process.output()[-3000:]}")
            result = self.run_healthcheck(name)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                log = process.output()[-3000:] if process else ""
                raise AssertionError(f"{name} never healthy: {result.stderr[-500:]!r}\n{log}")
            time.sleep(0.1)

    def wait_completed(self, name: str) -> None:
        process = self.processes[name]
        try:
            code = process.process.wait(HEALTH_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} did not finish:\n{process.output()}") from None
        assert code == 0, f"{name} exited {code}:\n{process.output()}"

    def start(self, name: str) -> None:
        """Wait for the conditions of its depends_on, then start it (machine services: none)."""
        service = self.services[name]
        for dependency, spec in service.get("depends_on", {}).items():
            condition = spec["condition"]
            if condition == "service_healthy":
                self.wait_healthy(dependency)
            elif condition == "service_completed_successfully":
                self.wait_completed(dependency)
            else:
                assert condition == "service_started", condition
                assert dependency in self.processes or self.is_machine(dependency)
        if self.is_machine(name):
            return
        for path in self.mounts(name).values():
            if path.is_file():  # a mounted config: the addresses in it translated
                path.write_text(self.translate(path.read_text(), name))
        log = self.directory / ".run" / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                self.command(name, service["command"]),
                env=self.environment(name),
                cwd=self.directory / ".run",
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = Process(name, process, log)

    def is_machine(self, name: str) -> bool:
        return image_name(self.services[name]) in MACHINE_IMAGES

    def up(self) -> None:
        for name in start_order(self.services):
            self.start(name)
        # What Compose's `up --wait` waits for: every service with a health check healthy.
        for name, service in self.services.items():
            if "healthcheck" in service:
                self.wait_healthy(name)

    def stop(self) -> dict[str, int]:
        """SIGTERM (the stop signal of every image here) in reverse start order; exit codes."""
        codes = {}
        for name in reversed(start_order(self.services)):
            process = self.processes.get(name)
            if process is None:
                continue
            if process.process.poll() is None:
                process.process.send_signal(signal.SIGTERM)
            try:
                codes[name] = process.process.wait(40)
            except subprocess.TimeoutExpired:
                process.process.kill()
                codes[name] = process.process.wait(10)
        return codes

    def cli(self, service: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`gateway ARGS` with a service's environment, as `docker compose exec SERVICE`."""
        return subprocess.run(
            self.command(service, ["gateway", *args]),
            env=self.environment(service),
            cwd=self.directory / ".run",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def logs(self) -> Iterator[str]:
        for process in self.processes.values():
            yield f"--- {process.name}\n{process.output()[-2000:]}"
