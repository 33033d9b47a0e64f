"""Piccolo configuration module (``PICCOLO_CONF=app.db.piccolo_conf``)."""

from piccolo.conf.apps import AppRegistry

from app.db.engine import DB

__all__ = ["APP_REGISTRY", "DB"]

APP_REGISTRY = AppRegistry(apps=["app.db.piccolo_app"])
