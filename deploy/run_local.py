"""deploy/compose.yaml run as processes of this machine, the way Docker Compose would run them,
for a machine without a container engine (docs/operations/deploy.md, "Without Docker") and
for tests/deploy/test_compose_processes.py, which starts the set-up through this same code.

    .venv/bin/python deploy/run_local.py up                       # Ctrl-C stops it
    .venv/bin/python deploy/run_local.py exec gateway-1 tenant list  # as `docker compose exec`

Everything comes from the compose file (and the Dockerfile, for the gateway image's own ENV):
each service's command, its environment (the image's ENV, then `env_file`, then
`environment`), its health check, and the start order of `depends_on`. What a container
network would do is done by translating addresses, and nothing else:

- `SERVICE:PORT` -> `127.0.0.1:<a free port>` for every port a service listens on (its
  `--port`, the container side of its `ports:`; a published port may be kept); in the
  service's own command, health check and mounted files `127.0.0.1:PORT`, `*:PORT`,
  `0.0.0.0` likewise (it binds loopback);
- the compose network's subnet -> 127.0.0.0/8, a service's fixed address -> 127.0.0.1 (every
  process connects from there);
- a mounted path -> the file or directory it mounts, in the run's directory (a copy of
  deploy/: mounted files are rewritten there, never in deploy/; a named volume is a
  directory of its own);
- the executables: `gateway` -> this Python's `-m gateway`, `python` -> this Python, others
  (haproxy) the machine's binary.

The services whose image is PostgreSQL's or Redis's are not started: the machine's servers
stand in (127.0.0.1:5432 and :6379), their health checks run as written, and the gateways'
database URL names a database of the run's own on the machine's server, with the
credentials of the administrator's URL given (the compose file's role does not exist there).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

DEPLOY = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"
MACHINE_IMAGES = {"postgres": 5432, "redis": 6379}  # image name -> the machine's server's port
LOOPBACK_NET = "127.0.0.0/8"
HEALTH_TIMEOUT = 60.0  # seconds a dependency may take to become healthy (as Compose's retries)
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
STATE = "state.json"  # in the run's directory: what `exec` needs to find the running set-up


class RunError(Exception):
    """What stops the set-up from coming up, in one line for the operator."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


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
        if name in path:
            raise RunError(f"depends_on cycle: {' -> '.join((*path, name))}")
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
    with its secrets made).

    `database_url` is where the gateways' PostgreSQL URL points instead (a database of the
    machine's server); `published` keeps chosen host ports, keyed by (service, container port).
    """

    compose: dict[str, Any]
    directory: Path
    dockerfile: Path
    database_url: str
    redis_prefix: str
    published: dict[tuple[str, int], int] = field(default_factory=dict)
    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.ports:
            for name, service in self.services.items():
                machine = MACHINE_IMAGES.get(image_name(service))
                if machine is not None:
                    self.ports[(name, machine)] = machine
                for port in listen_ports(service):
                    self.ports[(name, port)] = self.published.get((name, port)) or free_port()
        (self.directory / ".run").mkdir(exist_ok=True)

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
                if not path.exists():
                    raise RunError(f"{name} mounts {source}, which is not there")
            else:  # a named volume
                if source not in self.compose.get("volumes", {}):
                    raise RunError(f"{name} mounts the undeclared volume {source}")
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
        if binary is None:
            raise RunError(f"{program} (service {name}) is not installed")
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
            values["GATEWAY_DATABASE_URL"] = self.database_url
        if "GATEWAY_REDIS_URL" in values:
            values["GATEWAY_REDIS_PREFIX"] = self.redis_prefix
        # What a container has without being told: a PATH.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **values}

    # -- running --------------------------------------------------------------------------

    def run_healthcheck(self, name: str) -> subprocess.CompletedProcess[bytes]:
        test = self.services[name]["healthcheck"]["test"]
        if test[0] != "CMD":
            raise RunError(f"{name}: only CMD health checks run here (no shell in the image)")
        return subprocess.run(  # noqa: S603 - the compose file's own command
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
                raise RunError(f"{name} exited:\n{process.output()[-3000:]}")
            result = self.run_healthcheck(name)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                log = process.output()[-3000:] if process else ""
                stderr = result.stderr[-500:].decode(errors="replace")
                raise RunError(f"{name} never became healthy: {stderr}\n{log}")
            time.sleep(0.1)

    def wait_completed(self, name: str) -> None:
        process = self.processes[name]
        try:
            code = process.process.wait(HEALTH_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RunError(f"{name} did not finish:\n{process.output()}") from None
        if code != 0:
            raise RunError(f"{name} exited {code}:\n{process.output()}")

    def start(self, name: str) -> None:
        """Wait for the conditions of its depends_on, then start it (machine services: none)."""
        service = self.services[name]
        for dependency, spec in service.get("depends_on", {}).items():
            condition = spec["condition"]
            if condition == "service_healthy":
                self.wait_healthy(dependency)
            elif condition == "service_completed_successfully":
                self.wait_completed(dependency)
            elif condition != "service_started":
                raise RunError(f"{name}: unknown depends_on condition {condition}")
        if self.is_machine(name):
            return
        for path in self.mounts(name).values():
            if path.is_file():  # a mounted config: the addresses in it translated
                path.write_text(self.translate(path.read_text(), name))
        log = self.directory / ".run" / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 - the compose file's own command
                self.command(name, service["command"]),
                env=self.environment(name),
                cwd=self.directory / ".run",
                stdout=output,
                stderr=subprocess.STDOUT,
                # Ctrl-C in a terminal reaches run_local.py alone, which stops the services
                # in order with SIGTERM, as Compose does.
                start_new_session=True,
            )
        self.processes[name] = Process(name, process, log)

    def one_shots(self) -> set[str]:
        """Services that others wait to see finish (`service_completed_successfully`), such as
        `migrate`: their exit is not a failure of the set-up."""
        return {
            dependency
            for service in self.services.values()
            for dependency, spec in service.get("depends_on", {}).items()
            if spec["condition"] == "service_completed_successfully"
        }

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
        return subprocess.run(  # noqa: S603 - the gateway's own CLI
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

    # -- the state `exec` reads -----------------------------------------------------------

    def save(self) -> None:
        state = {
            "database_url": self.database_url,
            "redis_prefix": self.redis_prefix,
            "ports": [[service, port, host] for (service, port), host in self.ports.items()],
        }
        path = self.directory / STATE
        path.write_text(json.dumps(state))
        path.chmod(0o600)  # the database URL may hold a password

    @classmethod
    def load(cls, directory: Path) -> ComposeRun:
        try:
            state = json.loads((directory / STATE).read_text())
        except FileNotFoundError:
            raise RunError(f"nothing runs from {directory}: start it with `up` first") from None
        loaded = compose(directory)
        return cls(
            loaded,
            directory,
            dockerfile(loaded),
            state["database_url"],
            state["redis_prefix"],
            ports={(service, port): host for service, port, host in state["ports"]},
        )


def compose(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((directory / "compose.yaml").read_text())
    return loaded


def dockerfile(compose: dict[str, Any]) -> Path:
    """The gateway image's Dockerfile: the `build` of the compose file, from deploy/."""
    for service in compose["services"].values():
        if "build" in service:
            build = service["build"]
            path = (DEPLOY / build["context"] / build.get("dockerfile", "Dockerfile")).resolve()
            if not path.is_file():
                raise RunError(f"the image's Dockerfile is not at {path}")
            return path
    raise RunError("no service of compose.yaml builds the gateway's image")


# -- the command line ------------------------------------------------------------------------


def machine_database(admin_url: str, name: str) -> str:
    """Create database `name` on the machine's PostgreSQL unless it is there; its URL, with
    the administrator's credentials."""
    import asyncpg

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise RunError(f"{name!r} is not a database name here: lower-case letters, digits, _")

    async def create() -> None:
        connection = await asyncpg.connect(admin_url, timeout=5)
        try:
            found = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not found:
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    try:
        asyncio.run(create())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        host = urlsplit(admin_url).netloc.rpartition("@")[2]
        raise RunError(f"PostgreSQL at {host}: {exc}") from None
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def prepare(run_directory: Path) -> None:
    """deploy/ copied into the run's directory (mounted files are rewritten there)."""
    if not (DEPLOY / "secrets" / "gateway.env").exists():
        raise RunError("no deploy/secrets/: run deploy/make-secrets first")
    if run_directory.exists():
        shutil.rmtree(run_directory)
    shutil.copytree(
        DEPLOY, run_directory, ignore=shutil.ignore_patterns(run_directory.name, "__pycache__")
    )


def up(arguments: argparse.Namespace) -> int:
    directory: Path = arguments.directory
    prepare(directory)
    loaded = compose(directory)
    run = ComposeRun(
        loaded,
        directory,
        dockerfile(loaded),
        machine_database(arguments.postgres, arguments.database),
        "gateway-local:",
        published={("lb", 8080): arguments.port},
    )

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    # A shell starts a background job (`up &`) with SIGINT ignored, which Python keeps:
    # Ctrl-C's signal stops the set-up however it was started.
    signal.signal(signal.SIGINT, interrupted)
    try:
        print(f"run-local: starting {', '.join(start_order(run.services))}", file=sys.stderr)
        run.up()
        run.save()
        print(ready_text(run, Path(sys.argv[0])), flush=True)
        serving = [run.processes[name] for name in run.services if name in run.processes]
        serving = [process for process in serving if process.name not in run.one_shots()]
        while all(process.process.poll() is None for process in serving):
            time.sleep(0.5)
        exited = [process.name for process in serving if process.process.poll() is not None]
        print(f"run-local: {', '.join(exited)} exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not cut the stop short: the services run in sessions of their
        # own, so whatever this process did not stop would go on running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(FileNotFoundError):
            (directory / STATE).unlink()
        codes = run.stop()
        print(
            f"run-local: stopped ({json.dumps(codes)}); logs in {directory / '.run'}",
            file=sys.stderr,
        )


def ready_text(run: ComposeRun, script: Path) -> str:
    lb = run.port("lb", 8080)
    lines = [f"run-local: up; the load balancer on http://{LOOPBACK}:{lb}"]
    for (service, container), host in sorted(run.ports.items()):
        if not run.is_machine(service):
            lines.append(f"  {service}: {LOOPBACK}:{host} (container port {container})")
    lines += [
        f"  logs: {run.directory / '.run'}/<service>.log",
        "try:",
        f"  curl -s http://{LOOPBACK}:{lb}/echo/hello",
        f"  {sys.executable} {script} exec gateway-1 tenant list",
        "Ctrl-C stops every process.",
    ]
    return "\n".join(lines)


def exec_cli(arguments: argparse.Namespace) -> int:
    run = ComposeRun.load(arguments.directory)
    if arguments.service not in run.services or "build" not in run.services[arguments.service]:
        raise RunError(f"{arguments.service} is not a service of the gateway's image")
    # The service's own process environment, as `docker compose exec` gives it.
    command = run.command(arguments.service, ["gateway", *arguments.args])
    return subprocess.run(  # noqa: S603 - the gateway's own CLI
        command, env=run.environment(arguments.service), check=False
    ).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run_local.py",
        description="deploy/compose.yaml's processes on this machine, without a container engine",
    )
    parser.add_argument(
        "--directory",
        type=Path,
        default=DEPLOY / ".local",
        help="where the run's copy of deploy/, logs and volumes go (default: deploy/.local)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the set-up; Ctrl-C stops it")
    start.add_argument("--port", type=int, default=8080, help="the load balancer's (8080)")
    start.add_argument(
        "--postgres",
        default=os.environ.get("RUN_LOCAL_POSTGRES", POSTGRES_ADMIN),
        help="an administrator's URL of this machine's PostgreSQL (RUN_LOCAL_POSTGRES; "
        f"default {POSTGRES_ADMIN})",
    )
    start.add_argument("--database", default="gateway_local", help="made if missing")
    run = commands.add_parser("exec", help="`gateway ARGS` as the service's process runs it")
    run.add_argument("service", help="gateway-1 or gateway-2")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the gateway command")
    arguments = parser.parse_args(argv)
    arguments.directory = arguments.directory.resolve()
    try:
        return up(arguments) if arguments.command == "up" else exec_cli(arguments)
    except RunError as exc:
        print(f"run-local: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
