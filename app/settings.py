"""One typed settings object for the server and the CLI.

Sources, later ones winning:

1. defaults below,
2. the TOML file ``$DEVLOG_CONFIG`` or ``~/.config/devlog/config.toml`` (key = field name),
3. environment variables ``DEVLOG_<FIELD>`` (and plain ``DATABASE_URL`` for ``database_url``).

Every field carries a one-line description; ``devlog config show`` prints them and a test checks
that README.md documents each variable.
"""

from __future__ import annotations

import os
import tomllib
import typing
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
import platformdirs

from app.errors import ConfigError

ENV_PREFIX = "DEVLOG_"


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    database_url: Annotated[
        str | None,
        _doc(
            "PostgreSQL (>= 14) or TimescaleDB URL. Unset: devlog runs a private embedded "
            "PostgreSQL in data_dir. Also read from DATABASE_URL."
        ),
    ] = None
    host: Annotated[str, _doc("Address `devlog serve` listens on.")] = "127.0.0.1"
    port: Annotated[int, _doc("Port `devlog serve` listens on.")] = 3200
    allowed_hosts: Annotated[
        str | list[str],
        _doc("More host names the server answers to (comma-separated; `*.example.com`, `*`). "
             "Beyond loopback, set: only these (and loopback names) are accepted."),
    ] = ""
    data_dir: Annotated[
        str, _doc("Where devlog keeps its state, including the embedded PostgreSQL cluster.")
    ] = ""
    embedded_port: Annotated[
        int, _doc("Preferred TCP port of the embedded PostgreSQL (0: pick a free one).")
    ] = 0
    migrate_on_start: Annotated[
        bool, _doc("Apply pending database migrations when the server starts.")
    ] = True
    db_pool_min: Annotated[int, _doc("Minimum connections in the database pool.")] = 1
    db_pool_max: Annotated[int, _doc("Maximum connections in the database pool.")] = 10
    db_connect_timeout: Annotated[
        float, _doc("Seconds to wait for the database at start-up before giving up.")
    ] = 10.0
    db_hang_timeout: Annotated[
        float, _doc("Seconds without an answer after which the database counts as down: reads "
                    "then fail at once (HTTP 503) instead of waiting, until it answers again.")
    ] = 1.0
    timescale: Annotated[
        Literal["auto", "off"],
        _doc("Use TimescaleDB when the extension is available (auto) or never (off)."),
    ] = "auto"
    timescale_chunk_interval: Annotated[
        str, _doc("TimescaleDB chunk interval of agent_event (a PostgreSQL interval).")
    ] = "1 day"
    timescale_compress_after: Annotated[
        str, _doc("Compress agent_event chunks older than this interval ('' disables).")
    ] = "7 days"
    max_batch_events: Annotated[
        int, _doc("Most events one ingestEvents call may carry.")
    ] = 5000
    max_event_bytes: Annotated[
        int, _doc("Largest event (payload + content + command + error, in bytes) ingest accepts.")
    ] = 1_048_576
    max_body_bytes: Annotated[
        int, _doc("Largest HTTP request body (after gzip decompression); larger gets HTTP 413.")
    ] = 64 * 1_048_576
    read_timeout_seconds: Annotated[
        float, msgspec.Meta(ge=0),
        _doc("Longest a read (a query, a page) may run in the database; 0: no limit."),
    ] = 30.0
    max_query_bytes: Annotated[
        int, msgspec.Meta(ge=1), _doc("Largest GraphQL document (the query text, in bytes).")
    ] = 32_768
    max_query_tokens: Annotated[
        int, msgspec.Meta(ge=1), _doc("Most tokens (names, punctuation, values) in a GraphQL document.")
    ] = 3_000
    max_query_depth: Annotated[
        int, msgspec.Meta(ge=1), _doc("Deepest nesting of fields in a GraphQL operation.")
    ] = 12
    max_root_fields: Annotated[
        int, msgspec.Meta(ge=1), _doc("Most top-level fields (aliases included) in one GraphQL operation.")
    ] = 10
    max_aliases: Annotated[
        int, msgspec.Meta(ge=0), _doc("Most aliased fields in one GraphQL operation.")
    ] = 30
    max_query_cost: Annotated[
        int, msgspec.Meta(ge=1),
        _doc("Most values a GraphQL operation may ask for, estimated from `first` and list sizes."),
    ] = 100_000
    max_text_argument: Annotated[
        int, msgspec.Meta(ge=1),
        _doc("Longest text a GraphQL argument may hold (search text, names), in characters."),
    ] = 200
    max_list_argument: Annotated[
        int, msgspec.Meta(ge=1), _doc("Most items a list argument of a GraphQL query may hold.")
    ] = 1_000
    session_idle_minutes: Annotated[
        int, _doc("A session with no event for this long and no end event shows as idle.")
    ] = 30
    subscriber_queue: Annotated[
        int, _doc("Events a live subscriber may lag behind before its subscription is closed.")
    ] = 1000
    jobs: Annotated[
        bool, _doc("Run the scheduled jobs (rollup refresh, retention) in this server process.")
    ] = True
    rollup_interval_seconds: Annotated[
        int, _doc("Seconds between two refreshes of the analytics rollups.")
    ] = 60
    retention_days: Annotated[
        int, _doc("Delete raw events older than this many days (0: keep them forever).")
    ] = 0
    rollup_retention_days: Annotated[
        int, _doc("Delete hourly rollups older than this many days (0: forever); daily rollups "
                  "are kept forever.")
    ] = 0
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"], _doc("Server log level.")
    ] = "info"

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    def masked(self) -> dict[str, Any]:
        """The settings as a dict, with secrets (database password) masked."""
        out = msgspec.structs.asdict(self)
        if self.database_url:
            out["database_url"] = mask_url(self.database_url)
        out["data_dir"] = str(self.resolved_data_dir())
        return out


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("devlog", appauthor=False))


def config_file_path() -> Path:
    return _config_path_from(dict(os.environ))


def field_docs() -> dict[str, str]:
    """Field name -> one-line description, in declaration order."""
    hints = typing.get_type_hints(Settings, include_extras=True)
    docs: dict[str, str] = {}
    for field in msgspec.structs.fields(Settings):
        metas = getattr(hints[field.name], "__metadata__", ())
        docs[field.name] = next(
            (m.description for m in metas if isinstance(m, msgspec.Meta) and m.description), ""
        )
    return docs


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def mask_url(url: str) -> str:
    """Replace the password of a URL with ``***`` (and keep everything else readable)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from defaults, the TOML file, the environment and explicit overrides."""
    env = dict(os.environ if env is None else env)
    merged: dict[str, Any] = {}

    path = _config_path_from(env)
    if path.is_file():
        try:
            merged.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        # The collector has its own [collector] table in the same file.
        merged.pop("collector", None)

    fields = {f.name for f in msgspec.structs.fields(Settings)}
    if "DATABASE_URL" in env and env["DATABASE_URL"]:
        merged["database_url"] = env["DATABASE_URL"]
    for name in fields:
        value = env.get(env_name(name))
        if value is not None:
            merged[name] = value
    merged.update({k: v for k, v in overrides.items() if v is not None})

    unknown = sorted(set(merged) - fields)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in {path}")
    try:
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


def _config_path_from(env: dict[str, str]) -> Path:
    explicit = env.get(ENV_PREFIX + "CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_config_dir("devlog", appauthor=False)) / "config.toml"


def _explain(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    # msgspec says "Expected `int`, got `str` - at `$.port`": name the variable users set.
    if "- at `$." in message:
        text, _, where = message.partition(" - at `$.")
        field = where.rstrip("`").split(".")[0].split("[")[0]
        return f"setting {field} ({env_name(field)}): {text}"
    return f"settings: {message}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
