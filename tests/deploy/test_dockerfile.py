"""The Dockerfile, read statically (no container engine runs here): /data a volume that the
image's user owns, the mail outbox in it, a baked routes.yaml that means something in a
container, and the secrets that deploy/make-secrets writes kept out of the build context."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from gateway.routing.loader import load_route_table

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def final_stage() -> list[tuple[str, str]]:
    """(instruction, arguments) of the last stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    instructions = [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]
    last = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last:]


def index_of(stage: list[tuple[str, str]], name: str, contains: str = "") -> int:
    return next(i for i, (n, args) in enumerate(stage) if n == name and contains in args)


def environment(stage: list[tuple[str, str]]) -> dict[str, str]:
    return dict(
        item.split("=", 1) for name, args in stage if name == "ENV" for item in shlex.split(args)
    )


def test_data_is_a_volume_declared_after_it_is_made_and_owned() -> None:
    stage = final_stage()
    volume = index_of(stage, "VOLUME")
    assert stage[volume][1] == '["/data"]'
    made = index_of(stage, "RUN", "mkdir -p /data/outbox")
    assert "chown -R 10001:10001 /data" in stage[made][1]
    # What a RUN writes under a path after VOLUME declares it is discarded.
    assert made < volume


def test_the_image_runs_as_the_user_that_owns_data_and_mails_there() -> None:
    stage = final_stage()
    [user] = [args for name, args in stage if name == "USER"]
    assert user == "10001:10001"
    run = stage[index_of(stage, "RUN", "useradd")][1]
    assert "--uid 10001" in run
    assert "--gid 10001" in run
    env = environment(stage)
    assert env["GATEWAY_MAIL_URL"] == "outbox:/data/outbox"
    assert env["GATEWAY_DATABASE_URL"] == "sqlite:////data/gateway.db"


def test_the_baked_routes_proxy_to_a_service_by_name_not_to_the_container_itself() -> None:
    stage = final_stage()
    [copied] = [args for name, args in stage if name == "COPY" and "routes.yaml" in args]
    source, destination = copied.split()
    assert source == "deploy/routes.yaml"
    [command] = [args for name, args in stage if name == "CMD"]
    assert f'"--config", "{"/app/" + destination.removeprefix("./")}"' in command
    table = load_route_table(str(ROOT / source))
    hosts = {target.host for upstream in table.upstreams.values() for target in upstream.targets}
    assert hosts == {"echo"}  # the compose set-up's sample upstream, by its service name
    assert not hosts & LOOPBACK_HOSTS


def test_the_health_check_asks_live() -> None:
    [check] = [args for name, args in final_stage() if name == "HEALTHCHECK"]
    assert "http://127.0.0.1:8080/live" in check


def test_the_build_context_leaves_out_secrets_and_environments() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for entry in ("deploy/secrets", ".venv*", ".git"):
        assert entry in ignored
