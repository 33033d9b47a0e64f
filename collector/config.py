"""The collector's settings: the ``[collector]`` table of devlog's TOML config file, overridden
by ``DEVLOG_COLLECTOR_<FIELD>`` environment variables. Every field has a one-line description
(``devlog collect config`` prints them; a test checks the README lists each variable).

The collector never imports the server (``app``): it runs on developer machines that talk to a
server elsewhere.
"""

from __future__ import annotations

import os
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any

import msgspec
import platformdirs

ENV_PREFIX = "DEVLOG_COLLECTOR_"
AGENTS = ("claude-code", "codex", "copilot")


class ConfigError(Exception):
    """A setting that cannot be used; the message names it."""


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class CollectorSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    server_url: Annotated[
        str, _doc("GraphQL endpoint of the devlog server events are sent to.")
    ] = "http://127.0.0.1:3200/graphql"
    api_key: Annotated[
        str | None, _doc("API key sent as 'Authorization: Bearer …' (create one with `devlog keys create`).")
    ] = None
    agents: Annotated[
        list[str], _doc("Agents whose logs are collected (comma-separated in the environment).")
    ] = msgspec.field(default_factory=lambda: list(AGENTS))
    extra_paths: Annotated[
        list[str], _doc("More log folders, as agent=folder (e.g. claude-code=/mnt/old/.claude/projects).")
    ] = []
    redact: Annotated[
        bool, _doc("Mask API keys, tokens, private keys and URL passwords before anything is sent.")
    ] = True
    metadata_only: Annotated[
        bool, _doc("Send no content at all: no prompts, messages, tool inputs or outputs, commands.")
    ] = False
    batch_size: Annotated[int, _doc("Most events per ingest request.")] = 2000
    concurrency: Annotated[
        int, _doc("Ingest requests in flight at once (a backfill delivers faster; 1: one after "
                  "another).")
    ] = 2
    connect_timeout: Annotated[
        float, _doc("Seconds to wait for a connection to the server before the attempt fails "
                    "(and is retried).")
    ] = 10.0
    request_timeout: Annotated[
        float, _doc("Seconds a request may wait for the server's answer (it answers once the "
                    "batch is committed) before it fails and is retried.")
    ] = 120.0
    stall_seconds: Annotated[
        float, _doc("A request unanswered this long is reported as a delivery error (status, "
                    "log) while it goes on waiting; nothing leaves the buffer.")
    ] = 20.0
    max_buffer_events: Annotated[
        int, _doc("Events the local buffer may hold; when full, reading pauses until the server "
                  "takes some (nothing is dropped).")
    ] = 500_000
    workers: Annotated[
        int, _doc("Processes that parse a large backfill side by side (0: one per CPU; 1: none, "
                  "read in the collector's own process).")
    ] = 0
    quiet_seconds: Annotated[
        float, _doc("A log quiet this long closes its open LLM call (its last line may still come).")
    ] = 2.0
    rescan_seconds: Annotated[
        float, _doc("How often to look for new agent folders and missed changes while tailing.")
    ] = 30.0
    state_dir: Annotated[
        str, _doc("Where the collector keeps its buffer and cursors (default: devlog's data dir / collector).")
    ] = ""

    def resolved_state_dir(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir).expanduser()
        return Path(platformdirs.user_data_dir("devlog", appauthor=False)) / "collector"

    def paths_for(self, agent: str) -> list[Path]:
        out = []
        for item in self.extra_paths:
            name, sep, folder = item.partition("=")
            if sep and name.strip() == agent and folder.strip():
                out.append(Path(folder.strip()).expanduser())
        return out

    def masked(self) -> dict[str, Any]:
        out = msgspec.structs.asdict(self)
        if self.api_key:
            out["api_key"] = self.api_key[:8] + "…" if len(self.api_key) > 12 else "***"
        out["state_dir"] = str(self.resolved_state_dir())
        return out


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def field_docs() -> dict[str, str]:
    hints = typing.get_type_hints(CollectorSettings, include_extras=True)
    return {
        f.name: next((m.description for m in getattr(hints[f.name], "__metadata__", ())
                      if isinstance(m, msgspec.Meta) and m.description), "")
        for f in msgspec.structs.fields(CollectorSettings)
    }


def config_path(env: dict[str, str]) -> Path:
    explicit = env.get("DEVLOG_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_config_dir("devlog", appauthor=False)) / "config.toml"


def load_collector_settings(env: dict[str, str] | None = None, **overrides: Any) -> CollectorSettings:
    env = dict(os.environ if env is None else env)
    merged: dict[str, Any] = {}
    path = config_path(env)
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("collector", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: [collector] must be a table")
        merged.update(table)
    fields = {f.name: f for f in msgspec.structs.fields(CollectorSettings)}
    for name in fields:
        value = env.get(env_name(name))
        if value is None:
            continue
        if name in ("agents", "extra_paths"):
            merged[name] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            merged[name] = value
    merged.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(merged) - set(fields))
    if unknown:
        raise ConfigError(f"unknown collector setting(s) {', '.join(unknown)} in {path}")
    try:
        settings = msgspec.convert(merged, CollectorSettings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if "- at `$." in message:
            text, _, where = message.partition(" - at `$.")
            field = where.rstrip("`").split(".")[0].split("[")[0]
            raise ConfigError(f"collector setting {field} ({env_name(field)}): {text}") from None
        raise ConfigError(f"collector settings: {message}") from None
    bad = sorted(set(settings.agents) - set(AGENTS))
    if bad:
        raise ConfigError(f"collector setting agents ({env_name('agents')}): unknown agent(s) "
                          f"{', '.join(bad)}; known: {', '.join(AGENTS)}")
    if settings.concurrency < 1:
        raise ConfigError(f"collector setting concurrency ({env_name('concurrency')}): must be >= 1")
    if settings.workers < 0:
        raise ConfigError(f"collector setting workers ({env_name('workers')}): must be >= 0")
    for name in ("connect_timeout", "request_timeout", "stall_seconds"):
        if not getattr(settings, name) > 0:
            raise ConfigError(f"collector setting {name} ({env_name(name)}): must be > 0 seconds")
    if settings.batch_size < 1 or settings.max_buffer_events < settings.batch_size:
        raise ConfigError("collector settings: batch_size must be >= 1 and <= max_buffer_events")
    return settings
