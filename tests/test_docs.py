"""The documentation site: it builds with `mkdocs build --strict` (no broken link or anchor),
docs/routes.md's reference is what the loader's schema generates, every error code and setting
has its line, the README's routes.yaml loads, and nothing cites a document the repository does
not hold."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from auth_core.errors import ErrorCode, SettingsError
from gateway import cli
from gateway.routing import load_route_table, parse_route_table

# resolve(): the compiled pass runs the tests from a directory of links to this checkout.
ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_the_site_builds_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--quiet",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "routes" / "index.html").is_file()


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(items: list[object]) -> list[str]:
        found: list[str] = []
        for item in items:
            assert isinstance(item, dict)
            for value in item.values():
                found.extend(pages(value) if isinstance(value, list) else [str(value)])
        return found

    on_disk = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))
    assert sorted(pages(config["nav"])) == on_disk


def test_the_routes_reference_is_what_the_schema_generates() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "routes-reference"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_routes_reference_names_the_keys_the_loader_refuses_others_with() -> None:
    page = (DOCS / "routes.md").read_text()
    for key in ("connect_timeout", "forward_credentials", "server_name", "max_age", "per"):
        assert f"| `{key}` |" in page
    # An unknown key's refusal lists the keys: the same the page documents for a route.
    bad = "version: 1\nroutes:\n  - {name: a, path: /a, upstream: auth_core, auth: none, x: 1}\n"
    with pytest.raises(SettingsError) as refused:
        parse_route_table(bad)
    message = str(refused.value)
    listed = message.split("expected one of ", 1)[1].split(", ")
    routes_section = page.split("### `routes[]`", 1)[1].split("### ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", routes_section, re.M)
    assert listed == documented
    assert "browser" in listed
    assert "rate_limit" in listed


def test_the_schema_defaults_are_what_the_loader_applies(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "version: 1\nupstreams:\n  u: {targets: ['http://127.0.0.1:9']}\n"
        "routes:\n  - {name: r, path: /r, upstream: u, auth: jwt,"
        " cors: {origins: ['https://a.example']}}\n"
    )
    table = load_route_table(path)
    upstream, route = table.upstreams["u"], table.routes[0]
    page = (DOCS / "routes.md").read_text()

    def default(section: str, key: str) -> str:
        part = page.split(f"### `{section}`", 1)[1].split("\n### ", 1)[0]
        match = re.search(rf"^\| `{key}` \| [^|]+ \| ([^|]+) \|", part, re.M)
        assert match is not None, (section, key)
        return match.group(1).strip()

    assert default("upstreams.<name>", "connect_timeout") == "`2s`"
    assert upstream.connect_timeout == 2
    assert default("upstreams.<name>", "timeout") == "`30s`"
    assert upstream.timeout == 30
    assert default("upstreams.<name>", "max_fails") == "`3`"
    assert upstream.max_fails == 3
    assert default("upstreams.<name>", "fail_timeout") == "`10s`"
    assert upstream.fail_timeout == 10
    assert default("upstreams.<name>", "keepalive") == "`128`"
    assert upstream.keepalive == 128
    assert default("upstreams.<name>", "idle_timeout") == "`60s`"
    assert upstream.idle_timeout == 60
    assert default("routes[]", "max_body") == "`10m`"
    assert route.max_body == 10 * 1024 * 1024
    for key in ("strip_prefix", "websocket", "forward_credentials", "browser"):
        assert default("routes[]", key) == "`false`"
        assert getattr(route, key) is False
    assert default("routes[]", "roles") == "`[]`"
    assert route.roles == frozenset()
    assert route.cors is not None
    assert default("routes[].cors", "max_age") == "`10m`"
    assert route.cors.max_age == 600
    assert default("routes[].cors", "credentials") == "`false`"
    assert route.cors.credentials is False


def test_every_error_code_has_its_row() -> None:
    page = (DOCS / "errors.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3})", page, re.M)
    assert sorted(code for code, _ in rows) == sorted(code.value for code in ErrorCode)
    assert len(rows) == 24


def test_every_setting_has_its_row() -> None:
    sources = [
        ROOT / "gateway" / "config.py",
        ROOT / "auth_core" / "config.py",
        ROOT / "gateway" / "login" / "settings.py",
    ]
    read = set()
    for source in sources:
        read |= set(re.findall(r'"(GATEWAY_[A-Z0-9_]+)"', source.read_text()))
    page = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"`(GATEWAY_[A-Z0-9_]+)`", page.split("\n| --- |", 1)[1]))
    assert "GATEWAY_DATABASE_URL" in read
    assert "GATEWAY_HSTS_MAX_AGE" in read
    assert read <= documented, sorted(read - documented)


def test_the_readme_routes_yaml_loads(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "routes.yaml"
    path.write_text(example)
    table = load_route_table(path)
    assert [route.name for route in table.routes] == ["orders", "health", "auth"]
    assert len(readme.encode()) < 8 * 1024  # a few kilobytes: the rest is in docs/


# Citations of documents the repository does not hold, or of README sections that moved to
# docs/: "SPEC", the seeds (not a --seed option), and a README section (`README "Forwarding"`,
# `[README](../README.md), "TLS"`, "the README section"), bench/README.md and examples/README.md
# aside. An example's own README, named without a section, is fine.
FORBIDDEN = re.compile(
    r"\bSPEC\b|(?<![-\w])seeds?\b(?!\()|(?<![/\w])README(?!\.md)\S*\)?,?\s*(?:section|[\"“])"
)


def test_nothing_cites_documents_outside_the_repository() -> None:
    roots = [
        "gateway",
        "auth_core",
        "metrics",
        "bench",
        "tests",
        "docs",
        "scripts",
        "examples",
        "deploy",
    ]
    files = [path for name in roots for path in (ROOT / name).rglob("*") if path.is_file()]
    files += [ROOT / name for name in ("README.md", "routes.yaml", "setup.py", "mkdocs.yml")]
    found = []
    for path in files:
        if path.suffix not in {".py", ".md", ".yaml", ".yml", ".conf", ""}:
            continue
        if path == Path(__file__).resolve():  # its own pattern and docstring
            continue
        if {"results", "__pycache__", "node_modules"} & set(path.parts):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(
                line.replace("bench/README.md", "").replace("examples/README.md", "")
            ):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{prefix} {name}") or [f"{prefix} {name}"]
    return found


def test_every_command_has_its_line() -> None:
    commands = _commands(cli._parser(), "gateway")
    assert "gateway key rotate" in commands
    assert "gateway context-key" in commands
    page = (DOCS / "operations" / "cli.md").read_text()
    missing = [command for command in commands if f"{command} " not in page]
    assert missing == []
