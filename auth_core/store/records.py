"""The auth core's records, over either database: `Store` holds one table object a family.

Each family has a module of its own (users, sessions, revocations, one_time_tokens, audit,
settings, tenants, api_keys, pats, service_tokens). Every statement is written once for both
dialects (see base.py). Writes that must not race (spending a refresh token, consuming a
one-time token, counting failed logins) are single conditional UPDATEs, atomic in both databases.
"""

from __future__ import annotations

from auth_core.store.api_keys import ApiKeyTable
from auth_core.store.audit import AuditTable
from auth_core.store.base import Database
from auth_core.store.one_time_tokens import OneTimeTokenTable
from auth_core.store.pats import PatTable
from auth_core.store.revocations import RevocationTable
from auth_core.store.service_tokens import ServiceTokenTable
from auth_core.store.sessions import RefreshTokenTable, SessionTable
from auth_core.store.settings import SettingTable
from auth_core.store.tenants import TenantTable
from auth_core.store.users import UserTable


class Store:
    """Every record family over one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = UserTable(db)
        self.sessions = SessionTable(db)
        self.refresh_tokens = RefreshTokenTable(db)
        self.revocations = RevocationTable(db)
        self.one_time_tokens = OneTimeTokenTable(db)
        self.audit = AuditTable(db)
        self.settings = SettingTable(db)
        self.tenants = TenantTable(db)
        self.api_keys = ApiKeyTable(db)
        self.pats = PatTable(db)
        self.service_tokens = ServiceTokenTable(db)
