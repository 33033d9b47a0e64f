"""Apply Piccolo migrations, serialised across processes by a PostgreSQL advisory lock."""

from __future__ import annotations

import contextlib
import io
import logging

import asyncpg
from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
from piccolo.apps.migrations.tables import Migration

from app.db.engine import DB
from app.db.piccolo_app import APP_NAME
from app.errors import DatabaseUnavailable

log = logging.getLogger("devlog.db")

# Arbitrary constant: "devlog" in ASCII. Every devlog process migrating one database takes it.
MIGRATION_LOCK_KEY = 0x6465766C6F67


def migration_ids() -> list[str]:
    """Ids of all migrations shipped with this version, in order."""
    manager = ForwardsMigrationManager(app_name=APP_NAME)
    folder = manager.get_app_config(APP_NAME).resolved_migrations_folder_path
    return sorted(manager.get_migration_modules(folder))


async def pending_migrations() -> list[str]:
    manager = ForwardsMigrationManager(app_name=APP_NAME)
    await manager.create_migration_table()
    app_config = manager.get_app_config(APP_NAME)
    modules = manager.get_migration_modules(app_config.resolved_migrations_folder_path)
    applied = set(await Migration.get_migrations_which_ran(app_name=APP_NAME))
    return [mid for mid in sorted(modules) if mid not in applied]


async def migrate() -> list[str]:
    """Apply pending migrations; returns the ids applied (empty when up to date)."""
    conn: asyncpg.Connection = await DB.get_new_connection()
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            pending = await pending_migrations()
            if not pending:
                return []
            manager = ForwardsMigrationManager(app_name=APP_NAME)
            chatter = io.StringIO()  # Piccolo prints progress; keep it for the error message
            with contextlib.redirect_stdout(chatter):
                result = await manager.run()
            if not result.success:
                raise DatabaseUnavailable(f"migration failed: {result.message} {chatter.getvalue()}")
            for mid in pending:
                log.info("applied migration %s", mid)
            return pending
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()
