"""`gateway pats import FILE.csv`: personal access tokens another backend kept in the clear
(a Prisma `PersonalAccessToken` table exported to CSV), stored the gateway's way: only their
SHA-256, the clear token never kept, logged or printed (docs/migration.md).

A row is an owner's e-mail, a name, the token, its expiry and its last use. A first row naming
the columns (ours or Prisma's field names, in any order, other columns ignored) is a header;
without one the five are taken in that order. All or nothing: one refused row and no token is
imported. A token already stored for the same owner is left as it is, so importing the same
file again changes nothing.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from auth_core import credentials, legacy_pats
from auth_core.accounts import valid_email
from auth_core.errors import InvalidRequest
from auth_core.store.records import Store
from auth_core.tenancy import valid_name
from auth_core.text import shown

EMAIL, NAME, TOKEN, EXPIRES, LAST_USED, CREATED = (
    "email",
    "name",
    "token",
    "expires_at",
    "last_used_at",
    "created_at",
)
POSITIONAL = (EMAIL, NAME, TOKEN, EXPIRES, LAST_USED)
# A header's names (compared in lower case, `_` and spaces dropped) -> the column.
HEADER_NAMES = {
    "email": EMAIL,
    "owneremail": EMAIL,
    "useremail": EMAIL,
    "owner": EMAIL,
    "name": NAME,
    "token": TOKEN,
    "expiresat": EXPIRES,
    "expiry": EXPIRES,
    "lastusedat": LAST_USED,
    "lastuse": LAST_USED,
    "createdat": CREATED,
}
MAX_ROWS = 1_000_000


@dataclass
class PatImportReport:
    """What an import did; `refused` non-empty: nothing was imported."""

    imported: int = 0
    unchanged: int = 0  # stored already, for the same owner (a repeated import)
    expired: int = 0  # past their expiry: left out
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    email: str
    name: str
    token: str
    expires_at: float | None
    last_used_at: float | None
    created_at: float | None


class _Refused(Exception):
    """Ends the transaction of an import with refused rows (rolled back)."""


def parse_instant(text: str) -> float | None:
    """Unix seconds of a CSV cell: empty, or a date-time as PostgreSQL (`2025-11-06
    10:00:00.123`, Prisma's `timestamp(3)`, UTC) or JSON (`2025-11-06T10:00:00.123Z`) write
    it; raises ValueError."""
    text = text.strip()
    if not text:
        return None
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # Prisma's DateTime is stored as UTC
    return parsed.timestamp()


def _columns(first: list[str]) -> tuple[dict[str, int], bool]:
    """Where each column is, and whether `first` was a header."""
    names = [
        cell.strip().lstrip("\ufeff").lower().replace("_", "").replace(" ", "") for cell in first
    ]
    if "token" not in names:
        return {column: index for index, column in enumerate(POSITIONAL)}, False
    where: dict[str, int] = {}
    for index, name in enumerate(names):
        column = HEADER_NAMES.get(name)
        if column is None:
            continue  # Prisma's id, userId, updatedAt...
        if column in where:
            raise InvalidRequest(f"the header names the {column} column twice")
        where[column] = index
    missing = [column for column in (EMAIL, NAME, TOKEN) if column not in where]
    if missing:
        raise InvalidRequest(
            f"the header lacks {', '.join(missing)} (it needs email, name and token; "
            "expires_at and last_used_at are optional)"
        )
    return where, True


def read_rows(lines: Iterable[str]) -> tuple[list[_Row], list[str]]:
    """The rows of the file, and the lines refused for their content alone."""
    reader = csv.reader(lines, strict=True)  # a stray quote is an error, not a guess
    rows: list[_Row] = []
    refused: list[str] = []
    where: dict[str, int] | None = None
    end = 0  # the last physical line read: a row may span several
    while True:
        try:
            record = next(reader, None)
        except csv.Error as exc:
            raise InvalidRequest(f"line {end + 1} is not CSV: {exc}") from None
        if record is None:
            break
        line, end = end + 1, reader.line_num
        if where is None:
            where, header = _columns(record)
            if header:
                continue
        if not any(cell.strip() for cell in record):
            continue
        if len(rows) + len(refused) >= MAX_ROWS:
            raise InvalidRequest(f"at most {MAX_ROWS} tokens an import")
        cells = {column: record[i] if i < len(record) else "" for column, i in where.items()}
        email = cells[EMAIL].strip()
        try:
            rows.append(_row(line, cells))
        except (InvalidRequest, ValueError) as exc:
            refused.append(_line(line, email, cells[NAME], str(_reason(exc))))
    return rows, refused


def _reason(exc: Exception) -> str:
    return exc.detail if isinstance(exc, InvalidRequest) else str(exc)


def _row(line: int, cells: dict[str, str]) -> _Row:
    email = valid_email(cells[EMAIL].strip())
    name = valid_name(cells[NAME])
    token = cells[TOKEN].strip()
    if not (
        credentials.well_formed(token, credentials.PAT_PREFIX) or legacy_pats.legacy_shaped(token)
    ):
        raise InvalidRequest(
            f"the token is in no format the gateway accepts ({legacy_pats.MIN_LENGTH} to "
            f"{legacy_pats.MAX_LENGTH} letters, digits or -_~+/=, no dot, not gwk_ or gws_)"
        )
    instants: dict[str, float | None] = {}
    for column in (EXPIRES, LAST_USED, CREATED):
        try:
            instants[column] = parse_instant(cells.get(column, ""))
        except ValueError:
            raise InvalidRequest(
                f"{column} is not a date-time (e.g. 2025-11-06 10:00:00.123)"
            ) from None
    return _Row(line, email, name, token, instants[EXPIRES], instants[LAST_USED], instants[CREATED])


def _line(line: int, email: str, name: str, reason: str) -> str:
    # Escaped: it goes to a terminal. Never the token: in a file without a header row whose
    # columns are in another order, the e-mail and name columns may hold it, so they are shown
    # only when the line's e-mail column holds an e-mail address.
    try:
        valid_email(email)
    except (InvalidRequest, ValueError):
        return f"line {line} (?, ?): {reason}"
    return f"line {line} ({shown(email) or '?'}, {shown(name.strip()) or '?'}): {reason}"


async def import_pats(store: Store, lines: Iterable[str]) -> PatImportReport:
    """Import the tokens of a CSV file's lines, all or none (see the module's docstring)."""
    rows, refused = read_rows(lines)
    report = PatImportReport(refused=refused)
    now = time.time()
    try:
        async with store.db.transaction() as db:
            records = Store(db)
            owners: dict[str, str | None] = {}
            seen: dict[str, int] = {}  # token hash -> its line
            for row in rows:
                digest = credentials.credential_hash(row.token)
                reason = None
                if digest in seen:
                    reason = f"the same token as line {seen[digest]}"
                seen.setdefault(digest, row.line)
                if row.email not in owners:
                    user = await records.users.by_email(row.email)
                    owners[row.email] = None if user is None else user.id
                owner = owners[row.email]
                if owner is None:
                    reason = reason or "no user has this e-mail address"
                stored_for = await records.pats.owner_of(digest)
                if reason is None and stored_for is not None and stored_for != owner:
                    reason = "this token is stored for another user"
                if reason is not None:
                    report.refused.append(_line(row.line, row.email, row.name, reason))
                    continue
                assert owner is not None
                if stored_for is not None:
                    report.unchanged += 1
                elif row.expires_at is not None and row.expires_at <= now:
                    report.expired += 1
                else:
                    await records.pats.insert_imported(
                        owner,
                        digest,
                        _shown_prefix(row.token),
                        name=row.name,
                        created_at=row.created_at or now,
                        expires_at=row.expires_at,
                        last_used_at=row.last_used_at,
                    )
                    report.imported += 1
            if report.refused:
                raise _Refused
    except _Refused:
        report.imported = report.unchanged = report.expired = 0
        report.refused.sort(key=lambda text: int(text.split(" ", 2)[1]))
    return report


def _shown_prefix(token: str) -> str:
    if token.startswith(credentials.PAT_PREFIX):
        return credentials.display_prefix(token)
    return legacy_pats.display_prefix(token)
