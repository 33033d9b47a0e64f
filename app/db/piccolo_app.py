"""The single Piccolo app: devlog's tables and the migrations folder."""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig

from app.db.tables import TABLES

APP_NAME = "devlog"


def migrations_folder() -> Path:
    """``<repo>/migrations`` in a source checkout, ``app/_migrations`` in an installed wheel."""
    here = Path(__file__).resolve().parent.parent  # app/
    for candidate in (here.parent / "migrations", here / "_migrations"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("devlog migrations folder not found")


APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(migrations_folder()),
    table_classes=list(TABLES),
    migration_dependencies=[],
    commands=[],
)
