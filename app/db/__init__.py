"""Database: Piccolo tables and engine, migrations, the embedded PostgreSQL, TimescaleDB detection."""

import os

# Piccolo's migration runner finds its apps through this module (see piccolo_conf.py).
os.environ.setdefault("PICCOLO_CONF", "app.db.piccolo_conf")
