"""TimescaleDB: detection, hypertable conversion and policies.

When the ``timescaledb`` extension can be loaded (it is in ``shared_preload_libraries`` and
installed) and ``DEVLOG_TIMESCALE`` is ``auto``, ``agent_event`` becomes a hypertable partitioned
by ``ts`` (chunk interval from settings, 1 day by default) with compression segmented by session.
Otherwise it stays a plain table with the same columns, primary key ``(id, ts)`` and indexes for
time-range and per-session queries. Both modes are reported by :func:`storage_info`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.db import rollups
from app.db.ddl import execute_script, fetch
from app.db.engine import DB
from app.settings import Settings, get_settings

log = logging.getLogger("devlog.db")


@dataclass(frozen=True, slots=True)
class StorageInfo:
    server_version: str
    timescale_version: str | None
    hypertable: bool

    @property
    def mode(self) -> str:
        return "timescaledb" if self.hypertable else "postgresql"


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# The SQL, as constants and pure functions (tests/timescale runs it on PGlite + TimescaleDB).
LOADABLE_SQL = (
    "SELECT (SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb') > 0"
    " AND current_setting('shared_preload_libraries') ILIKE '%timescaledb%' AS ok"
)
CREATE_EXTENSION_SQL = "CREATE EXTENSION IF NOT EXISTS timescaledb"
VERSIONS_SQL = """
SELECT current_setting('server_version') AS server_version,
       (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS ts_version
"""
IS_HYPERTABLE_SQL = (
    "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'agent_event'"
)
REMOVE_COMPRESSION_POLICY_SQL = "SELECT remove_compression_policy('agent_event', if_exists => TRUE)"


def hypertable_sql(chunk_interval: str) -> str:
    """Convert agent_event (possibly holding rows) to a hypertable on ``ts``."""
    return ("SELECT create_hypertable('agent_event', 'ts', "
            f"chunk_time_interval => INTERVAL {_quote_literal(chunk_interval)}, "
            "if_not_exists => TRUE, migrate_data => TRUE)")


def compression_policy_sql(compress_after: str | None) -> str:
    """Compression settings and policy (replacing any previous one); none when ``compress_after``
    is empty. Run at every start."""
    if not compress_after:
        return REMOVE_COMPRESSION_POLICY_SQL
    return ("ALTER TABLE agent_event SET (timescaledb.compress, "
            "timescaledb.compress_segmentby = 'session_id', "
            "timescaledb.compress_orderby = 'ts DESC');"
            f"{REMOVE_COMPRESSION_POLICY_SQL};"
            "SELECT add_compression_policy('agent_event', "
            f"INTERVAL {_quote_literal(compress_after)});")


async def timescale_loadable() -> bool:
    rows = await fetch(LOADABLE_SQL)
    return bool(rows[0]["ok"])


async def convert_agent_event_to_hypertable(settings: Settings | None = None) -> bool:
    """Make agent_event a hypertable when TimescaleDB is usable. Returns whether it is one."""
    settings = settings or get_settings()
    if settings.timescale == "off" or not await timescale_loadable():
        log.info("TimescaleDB not available: agent_event is a plain PostgreSQL table")
        return False
    await execute_script(CREATE_EXTENSION_SQL)
    await execute_script(hypertable_sql(settings.timescale_chunk_interval))
    log.info("agent_event is a TimescaleDB hypertable (chunks of %s)",
             settings.timescale_chunk_interval)
    return True


async def apply_policies(settings: Settings) -> None:
    """Compression policy on the hypertable, and compressible rollups, as configured (no-op on
    plain PostgreSQL)."""
    info = await storage_info()
    if not info.hypertable:
        return
    await execute_script(compression_policy_sql(settings.timescale_compress_after))
    caggs = {r["view_name"] for r in await fetch(
        "SELECT view_name FROM timescaledb_information.continuous_aggregates")}
    for r in rollups.ROLLUPS:
        if {r.name, r.daily} <= caggs:
            for statement in rollups.timescale_policy_sql(r, settings.timescale_compress_after):
                await execute_script(statement)


_HYPERTABLE: dict[str, tuple[float, bool]] = {}  # database DSN -> (checked at, answer)
_KEYED: dict[str, bool] = {}  # database DSN -> whether event ids go through event_key

EVENT_KEY_SQL = "SELECT to_regclass('event_key') IS NOT NULL"


async def events_keyed(conn) -> bool:  # noqa: ANN001 (an asyncpg connection)
    """Whether event ids are unique through the ``event_key`` table (TimescaleDB: a
    hypertable's unique keys must hold its time column) rather than through ``agent_event``'s
    primary key (plain PostgreSQL). Asked once per database and process: only migrations change
    it, and they run before the server serves."""
    key = str(DB.config.get("dsn"))
    keyed = _KEYED.get(key)
    if keyed is None:
        keyed = _KEYED[key] = bool(await conn.fetchval(EVENT_KEY_SQL))
    return keyed



async def events_in_hypertable(max_age: float = 60.0) -> bool:
    """Whether agent_event is a hypertable, remembered per database for ``max_age`` seconds
    (it changes only when migrations run): read paths ask on every query."""
    key = str(DB.config.get("dsn"))
    now = time.monotonic()
    cached = _HYPERTABLE.get(key)
    if cached is None or now - cached[0] > max_age:
        cached = _HYPERTABLE[key] = (now, (await storage_info()).hypertable)
    return cached[1]


async def storage_info() -> StorageInfo:
    rows = await fetch(VERSIONS_SQL)
    server_version, ts_version = rows[0]["server_version"], rows[0]["ts_version"]
    hypertable = False
    if ts_version:
        found = await fetch(IS_HYPERTABLE_SQL)
        hypertable = bool(found)
    return StorageInfo(server_version=server_version, timescale_version=ts_version,
                       hypertable=hypertable)
