"""The `gateway` command (docs/operations/cli.md)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from auth_core.config import database_url_from_env
from auth_core.errors import SettingsError
from auth_core.store import DatabaseUnavailable
from gateway import __version__, admin_cli, context_cli
from gateway.config import Settings
from gateway.logs import configure
from gateway.routing.loader import load_route_table
from gateway.routing.table import RouteTable
from gateway.server.startup import StartupFailed

ADMIN_COMMANDS = frozenset(
    {
        "migrate",
        "user",
        "users",
        "tenant",
        "key",
        "service-token",
        "pat",
        "pats",
        "session",
        "ban",
    }
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="API gateway and reverse proxy with a built-in auth core."
    )
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the route table")
    demo = commands.add_parser("demo", help="serve with example upstreams, and print what to try")
    for command in (serve, demo):
        command.add_argument("--config", default="routes.yaml", help="the route table file")
        command.add_argument("--host", default="0.0.0.0" if command is serve else "127.0.0.1")
        command.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")

    check = commands.add_parser("check-config", help="validate a route table and exit")
    check.add_argument("config", nargs="?", default="routes.yaml")
    admin_cli.add_commands(commands)
    context_cli.add_command(commands)
    return parser


def _load(path: str) -> RouteTable:
    return load_route_table(path)


def _settings() -> Settings:
    return Settings.from_env()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            table = _load(args.config)
            print(
                f"{args.config}: ok ({len(table.routes)} routes, "
                f"{len(table.upstreams)} upstreams, sha256 {table.sha256})"
            )
            return 0
        if args.command == "migrate":
            configure("WARNING")
            return admin_cli.migrate_command(database_url_from_env())
        settings = _settings()
        if args.command in ADMIN_COMMANDS:
            # A command prints what it did; the auth core's info lines (a first migration,
            # say) are for a serving process, unless GATEWAY_LOG_LEVEL asks for them.
            configure(settings.log_level if os.environ.get("GATEWAY_LOG_LEVEL") else "WARNING")
            return admin_cli.run(args, settings.auth)
        configure(settings.log_level)
        table = _load(args.config)
        if args.command == "context-key":
            return context_cli.run(args, settings.auth, table)
        if args.command == "serve":
            if args.workers < 1:
                print("gateway: --workers must be at least 1", file=sys.stderr)
                return 2
            from gateway.server.workers import serve

            return serve(
                settings,
                table,
                host=args.host,
                port=args.port,
                workers=args.workers,
                config_path=Path(args.config),
            )
        if args.command == "demo":
            from gateway.demo.run import run_demo

            return run_demo(settings, table, Path(args.config), args.host, args.port)
    except (SettingsError, StartupFailed, DatabaseUnavailable) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    return 2  # pragma: no cover - argparse rejects unknown commands
