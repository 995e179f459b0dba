"""Start-up failures, as an operator meets them: `gateway serve` as a child process, which must
say what is wrong in one line on stderr and exit non-zero, with no traceback
(docs/operations/running.md). The test's own timeout bounds "within seconds": a hang fails it."""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _execute
from tests.support import LOOPBACK, command_environment, free_port, gateway_command

ROUTES = "version: 1\nroutes: []\n"
# PostgreSQL needs the secrets every replica shares; 32 bytes or more each.
POSTGRES_SECRETS = {
    "GATEWAY_JWT_SECRET": "k1:" + "j" * 40,
    "GATEWAY_SERVICE_SECRET": "k1:" + "s" * 40,
}


def serve(
    directory: Path, *, port: int | None = None, workers: int = 1, **variables: str
) -> subprocess.CompletedProcess[str]:
    """`gateway serve` run to its end (it must end: it cannot start)."""
    (directory / "routes.yaml").write_text(ROUTES)
    environment = command_environment(directory, GATEWAY_LOG_LEVEL="warning", **variables)
    return gateway_command(
        directory,
        environment,
        "serve",
        "--host",
        LOOPBACK,
        "--port",
        str(port if port is not None else free_port()),
        "--workers",
        str(workers),
        timeout=50,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The failure's only line on stderr, having checked the exit status and the rest."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("gateway: ")
    return lines[0]


def postgres_at(database_dsn: str, *, user: str = "postgres", port: int = 5432) -> str:
    """The DSN of `database_dsn`'s server with another role or port."""
    database = database_dsn.rsplit("/", 1)[1]
    return f"postgresql://{user}@127.0.0.1:{port}/{database}"


@pytest.mark.parametrize("workers", [1, 2])
def test_postgres_that_nothing_answers_is_one_line(tmp_path: Path, workers: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/gateway"
    done = serve(tmp_path, workers=workers, GATEWAY_DATABASE_URL=url, **POSTGRES_SECRETS)
    line = one_line(done)
    assert line.startswith("gateway: cannot connect to PostgreSQL: ")
    assert "Connect call failed" in line


def test_a_database_that_does_not_exist_is_named(tmp_path: Path, postgres_database: str) -> None:
    name = f"gateway_missing_{secrets.token_hex(4)}"
    url = postgres_at(postgres_database).rsplit("/", 1)[0] + f"/{name}"
    done = serve(tmp_path, GATEWAY_DATABASE_URL=url, **POSTGRES_SECRETS)
    assert one_line(done) == (
        f'gateway: PostgreSQL refused the connection: database "{name}" does not exist'
    )


def test_a_role_that_does_not_exist_is_named(tmp_path: Path, postgres_database: str) -> None:
    role = f"nobody_{secrets.token_hex(4)}"
    url = postgres_at(postgres_database, user=role)
    done = serve(tmp_path, GATEWAY_DATABASE_URL=url, **POSTGRES_SECRETS)
    assert one_line(done) == (
        f'gateway: PostgreSQL refused the connection: role "{role}" does not exist'
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_a_port_in_use_is_named(tmp_path: Path, workers: int) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve(tmp_path, port=port, workers=workers)
    assert one_line(done) == f"gateway: cannot listen on {LOOPBACK}:{port}: Address already in use"


@pytest.fixture
def one_connection_role(postgres_database: str) -> Iterator[str]:
    """A role allowed a single connection, with a schema of its own: the start-up check gets
    through, the second worker never does (the first holds the connection)."""
    role = f"gw_single_{secrets.token_hex(4)}"
    _execute(postgres_database, f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1")
    _execute(postgres_database, f"CREATE SCHEMA {role} AUTHORIZATION {role}")
    try:
        yield postgres_at(postgres_database, user=role) + f"?search_path={role}"
    finally:
        _execute(postgres_database, f"DROP SCHEMA IF EXISTS {role} CASCADE")
        _execute(postgres_database, f"DROP ROLE IF EXISTS {role}")


def test_supervisor_gives_up_on_workers_that_keep_failing_to_start(
    tmp_path: Path, one_connection_role: str
) -> None:
    """Before, such workers were restarted forever while the port stayed bound and nothing
    answered on it; now the supervisor exits 1 after three failed starts in a row."""
    done = serve(tmp_path, workers=2, GATEWAY_DATABASE_URL=one_connection_role, **POSTGRES_SECRETS)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1].endswith("failed to start 3 times in a row; giving up"), done.stderr
    failures = [line for line in lines if line.startswith("gateway: worker ")][:-1]
    assert len(failures) >= 3, done.stderr
    assert all("too many connections for role" in line for line in failures), done.stderr
