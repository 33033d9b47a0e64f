"""The dashboard: Litestar controllers rendering Jinja pages, templates and vendored static files."""

from pathlib import Path

UI_DIR = Path(__file__).resolve().parent
STATIC_DIR = UI_DIR / "static"
TEMPLATES_DIR = UI_DIR / "templates"
