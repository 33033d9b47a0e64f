"""Deterministic identities of the context rows, derived from natural keys.

Everything is a UUIDv5 in devlog's namespace, so any server process computes the same ids
without a lookup, and upserts can go in a fixed order (no deadlocks, no duplicates). The
functions are memoised: a batch repeats the same few keys thousands of times.
"""

from __future__ import annotations

import re
import uuid
from functools import lru_cache
from pathlib import PurePosixPath, PureWindowsPath

NAMESPACE = uuid.UUID("8f4b0b9c-5d0e-5b7a-9c51-64657676c6f7")

_SCP_LIKE = re.compile(r"^(?:[\w.+-]+@)?(?P<host>[\w.-]+):(?!//)(?P<path>.+)$")
_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?(?P<path>/.*)?$",
                  re.IGNORECASE)


@lru_cache(maxsize=65536)
def session_id(agent: str, native_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"session:{agent}:{native_id}")


@lru_cache(maxsize=65536)
def session_key(agent: str, native_id: str) -> str:
    """``session_id`` as text (what ingest hands asyncpg: no Python-level UUID calls)."""
    return str(session_id(agent, native_id))


@lru_cache(maxsize=65536)
def machine_id(key: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"machine:{key}")


@lru_cache(maxsize=65536)
def project_id(key: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"project:{key}")


@lru_cache(maxsize=65536)
def workspace_id(machine_key: str, path: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"workspace:{machine_key}:{path}")


@lru_cache(maxsize=65536)
def normalize_remote(remote: str) -> str | None:
    """``git@github.com:Acme/App.git``, ``https://github.com/Acme/App`` and
    ``ssh://git@github.com:22/Acme/App.git`` all become ``github.com/Acme/App``."""
    text = remote.strip()
    if not text:
        return None
    match = _URL.match(text)
    if match:
        host, path = match["host"], match["path"] or ""
        if match["scheme"].lower() == "file":
            return None
    else:
        match = _SCP_LIKE.match(text)
        if not match:
            return None
        host, path = match["host"], match["path"]
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    if not path:
        return None
    return f"{host.lower()}/{path}"


@lru_cache(maxsize=65536)
def project_key(remote: str | None, path: str | None, machine_key: str) -> tuple[str, str] | None:
    """(key, display name) of the project, or None when neither a remote nor a path is known."""
    normalized = normalize_remote(remote) if remote else None
    if normalized:
        return normalized, normalized.rsplit("/", 1)[-1]
    if path:
        return f"path:{machine_key}:{path}", _basename(path)
    return None


def _basename(path: str) -> str:
    name = (PureWindowsPath(path) if "\\" in path else PurePosixPath(path)).name
    return name or path
