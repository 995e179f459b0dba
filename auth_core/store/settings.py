"""Records of the auth core's stored settings (key -> value)."""

from __future__ import annotations

from auth_core.store.base import Database


class SettingTable:
    """Values the auth core keeps for itself (the embedded mode's generated secrets)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> str | None:
        value = await self.db.fetchval("SELECT value FROM settings WHERE key = $1", key)
        return None if value is None else str(value)

    async def put_if_absent(self, key: str, value: str) -> str:
        """Store `value` unless the key has one; the value in force either way."""
        await self.db.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            key,
            value,
        )
        stored = await self.get(key)
        assert stored is not None
        return stored
