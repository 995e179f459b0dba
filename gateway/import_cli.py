"""Moving another service's users and tokens in (docs/migration.md): `gateway pats import
FILE.csv`, and `gateway users import --from-postgres URL --query SQL [--mapping-out FILE.csv]`
(the CSV form of `users import` is admin_cli's).

Both import all or nothing: a refused row is printed with its line or row, and nothing is
written. Neither prints a token, a password hash or the source database's URL.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from auth_core.errors import InvalidRequest
from auth_core.pat_import import import_pats
from auth_core.service import AuthCore, CallInfo
from auth_core.text import shown
from auth_core.user_import import SourceUser, import_users

CONNECT_TIMEOUT = 10.0  # seconds
REQUIRED = ("email", "password_hash")


def add_pats_commands(commands: Any) -> None:
    pats = commands.add_parser("pats", help="manage personal access tokens in bulk")
    actions = pats.add_subparsers(dest="pats_command", required=True, metavar="ACTION")
    bulk = actions.add_parser(
        "import",
        help="import tokens another backend stored in the clear, from a CSV file: "
        "email,name,token,expires_at,last_used_at (hashed; docs/migration.md)",
    )
    bulk.add_argument("file")
    bulk.add_argument("--json", action="store_true")


def add_users_import_options(bulk: argparse.ArgumentParser) -> None:
    bulk.add_argument(
        "--from-postgres",
        metavar="URL",
        help="read the users from this PostgreSQL database instead of a file",
    )
    bulk.add_argument(
        "--query",
        metavar="SQL",
        help="with --from-postgres: a SELECT returning email, password_hash and optionally "
        "roles and id (run in a read-only transaction)",
    )
    bulk.add_argument(
        "--mapping-out",
        metavar="FILE",
        help="with --from-postgres: write old_id,user_id,email for each user (the query "
        "must return an id column)",
    )


def _refusals(lines: list[str], what: str) -> int:
    for line in lines:
        print(f"refused {line}", file=sys.stderr)
    print(f"gateway: nothing imported: {len(lines)} {what} refused", file=sys.stderr)
    return 1


async def pats_import(args: argparse.Namespace, core: AuthCore) -> int:
    path = Path(args.file)
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except OSError as exc:
        print(f"gateway: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"gateway: {path} is not UTF-8 text", file=sys.stderr)
        return 1
    # Rows end at \n, \r or \r\n only (as `users import` reads them).
    report = await import_pats(core.store, io.StringIO(text, newline=""))
    if report.refused:
        return _refusals(report.refused, "lines")
    await core.audit(
        "pats_import",
        "success",
        CallInfo(),
        actor_id="cli",
        imported=report.imported,
        unchanged=report.unchanged,
        expired=report.expired,
    )
    if args.json:
        counts = {
            "imported": report.imported,
            "unchanged": report.unchanged,
            "expired": report.expired,
        }
        print(json.dumps(counts))
    else:
        print(
            f"imported {report.imported} tokens ({report.unchanged} stored already, "
            f"{report.expired} expired left out)"
        )
    until = core.settings.legacy_pat_until
    if until is None or until <= time.time():
        print(
            "note: tokens in the old format are refused until GATEWAY_LEGACY_PAT_UNTIL is set "
            "to a later date (docs/migration.md)",
            file=sys.stderr,
        )
    return 0


def check_users_import(args: argparse.Namespace) -> str | None:
    """What is wrong with the options of `users import`, or None."""
    if args.from_postgres is None:
        if args.file is None:
            return "give a CSV file or --from-postgres URL --query SQL"
        if args.query is not None or args.mapping_out is not None:
            return "--query and --mapping-out go with --from-postgres"
        return None
    if args.file is not None:
        return "give a CSV file or --from-postgres, not both"
    if not args.query:
        return "--from-postgres needs --query SQL"
    return None


async def _read_source(url: str, query: str) -> tuple[list[SourceUser], bool]:
    """The rows of `query` and whether they carry an id; InvalidRequest when the database
    cannot be reached, the query fails or lacks a column."""
    import asyncpg  # here: the other commands do without it (SQLite)

    try:
        connection = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # The message names the host, never the URL (which may hold a password).
        raise InvalidRequest(f"cannot connect to the source database: {shown(str(exc))}") from None
    except ValueError:
        raise InvalidRequest("--from-postgres must be a postgresql:// URL") from None
    try:
        async with connection.transaction(readonly=True):
            statement = await connection.prepare(query)
            columns = [attribute.name for attribute in statement.get_attributes()]
            missing = [name for name in REQUIRED if name not in columns]
            if missing:
                raise InvalidRequest(
                    f"the query must return the columns email and password_hash (roles and id "
                    f"are optional); it lacks {', '.join(missing)}"
                )
            records = await statement.fetch()
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise InvalidRequest(f"the query failed: {shown(str(exc))}") from None
    finally:
        await connection.close()
    with_ids = "id" in columns
    rows = [
        SourceUser(
            f"row {number}",
            record["email"],
            record["password_hash"],
            record["roles"] if "roles" in columns else None,
            record["id"] if with_ids else None,
        )
        for number, record in enumerate(records, start=1)
    ]
    return rows, with_ids


def _write_mapping(path: Path, mapping: list[tuple[str, str, str]]) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("old_id", "user_id", "email"))
        writer.writerows(mapping)
    os.replace(partial, path)


async def users_from_postgres(args: argparse.Namespace, core: AuthCore) -> int:
    rows, with_ids = await _read_source(args.from_postgres, args.query)
    mapping_out = None if args.mapping_out is None else Path(args.mapping_out)
    if mapping_out is not None:
        if not with_ids:
            raise InvalidRequest("--mapping-out needs the query to return an id column")
        if not mapping_out.parent.is_dir():
            raise InvalidRequest(f"cannot write {mapping_out}: no such directory")
    report = await import_users(core.store, rows, with_ids=with_ids)
    if report.refused:
        return _refusals(report.refused, "rows")
    await core.audit(
        "users_import",
        "success",
        CallInfo(),
        actor_id="cli",
        source="postgres",
        created=report.created,
        existing=report.existing,
    )
    if mapping_out is not None:
        try:
            await asyncio.to_thread(_write_mapping, mapping_out, report.mapping)
        except OSError as exc:
            print(
                f"gateway: the users are imported, but {mapping_out} could not be written "
                f"({exc.strerror}): run the same import again to write it",
                file=sys.stderr,
            )
            return 1
    if args.json:
        print(json.dumps({"created": report.created, "existing": report.existing}))
    else:
        print(f"imported {report.created} users ({report.existing} had an account already)")
    return 0
