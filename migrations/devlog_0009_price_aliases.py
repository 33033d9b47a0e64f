"""Users' price aliases: a model name nobody lists (a custom deployment's ``aide-gpt-5``) priced as
a model that has a price (``devlog prices alias NAME MODEL``, or a price file's ``aliases``). In
the database so every server process prices with them; read into each process's PriceBook."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.db.ddl import execute_script

ID = "2026-12-05T12:00:00:000009"
VERSION = "1.38.0"
DESCRIPTION = "model_price_alias"

DDL = """
CREATE TABLE IF NOT EXISTS model_price_alias (
    name       text PRIMARY KEY CHECK (name = lower(name) AND name <> ''),  -- as agents report it
    model      text NOT NULL CHECK (model = lower(model) AND model <> name),  -- priced as this
    shipped    boolean NOT NULL DEFAULT false,   -- from a snapshot shipped with devlog
    source     text NOT NULL,                    -- 'devlog prices alias', or the price file
    loaded_at  timestamptz NOT NULL DEFAULT now()
);
"""


async def _apply() -> None:
    await execute_script(DDL)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="devlog", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
