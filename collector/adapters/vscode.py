"""VS Code's storage, shared by the adapters of agents that live in VS Code (Copilot; later
VS Code forks): where ``User/`` is on each platform, which folder a ``workspaceStorage/<id>``
belongs to (``workspace.json``: a folder URI or a multi-root ``.code-workspace``; percent-encoded,
Windows drives, ``vscode-remote://`` authorities), and the replay of the ``.jsonl`` change logs
newer builds write instead of whole JSON documents.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec

from collector.adapters.base import SkipLine

APPS = ("Code", "Code - Insiders", "VSCodium")
SERVER_DIRS = (".vscode-server", ".vscode-server-insiders")

_DRIVE = re.compile(r"^/[A-Za-z]:")
_JSONC = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/|,(?=\s*[}\]])', re.DOTALL)
_decoder = msgspec.json.Decoder()


# -- where -----------------------------------------------------------------------------------------


def config_bases(env: Mapping[str, str], home: Path, platform: str) -> list[Path]:
    """The folders that hold ``Code/User`` and its siblings on ``platform`` (``sys.platform``)."""
    if platform == "win32":
        appdata = env.get("APPDATA")
        return [Path(appdata) if appdata else home / "AppData" / "Roaming"]
    if platform == "darwin":
        return [home / "Library" / "Application Support"]
    bases = [Path(env["XDG_CONFIG_HOME"])] if env.get("XDG_CONFIG_HOME") else []
    return list(dict.fromkeys([*bases, home / ".config"]))


def uri_to_path(uri: Any) -> str | None:
    """A folder of a VS Code URI: ``file:///a%20b`` -> ``/a b``, ``file:///c%3A/x`` -> ``c:/x``,
    ``vscode-remote://ssh-remote+host/x`` -> ``/x``. Text without a scheme is already a path."""
    if not isinstance(uri, str) or not uri:
        return None
    if "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    path = unquote(parts.path)
    if parts.scheme == "file" and parts.netloc and parts.netloc != "localhost":
        path = f"//{parts.netloc}{path}"  # a UNC share
    if _DRIVE.match(path):
        path = path[1:]
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path or None


def workspace_folder(storage_dir: Path) -> str | None:
    """The folder of ``workspaceStorage/<id>/``: ``workspace.json``'s ``folder``, or the first
    folder of its multi-root ``workspace`` file (the ``.code-workspace`` path when unreadable)."""
    meta = _read_json(storage_dir / "workspace.json")
    if not isinstance(meta, dict):
        return None
    if isinstance(meta.get("folder"), str):
        return uri_to_path(meta["folder"])
    ws = uri_to_path(meta.get("workspace"))
    if ws is None:
        return None
    config = _read_json(Path(ws))
    for folder in as_list(as_dict(config).get("folders")):
        folder = as_dict(folder)
        rel = folder.get("path")
        if isinstance(rel, str) and rel:
            return os.path.normpath(os.path.join(os.path.dirname(ws), rel))
        if (uri := uri_to_path(folder.get("uri"))) is not None:
            return uri
    return ws


def _read_json(path: Path) -> Any:
    """A small JSON (or JSON-with-comments) file, or None."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return json.loads(_JSONC.sub(lambda m: m.group(1) or "", text))
    except (ValueError, RecursionError):
        return None


# -- change logs -----------------------------------------------------------------------------------


def replay_change_log(data: bytes) -> Any:
    """The session object of a ``.jsonl`` change log, or None when no line yields one.

    ``{"kind":0,"v":x}`` replaces the object; ``{"kind":1,"k":path,"v":x}`` sets ``x`` at
    ``path``; ``{"kind":2,"k":path,"v":[…],"i":n}`` cuts the array at ``path`` to ``n`` items
    (when ``i`` is given) and appends the items of ``v`` (a ``v`` that is not a list is appended
    as one item); ``{"kind":3,"k":path}`` deletes. Missing containers on a path are created;
    lines that are not JSON (an unfinished last line), unknown kinds and paths that cannot be
    followed are ignored.
    """
    state: Any = None
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            entry = _decoder.decode(line)
        except ValueError:  # msgspec.DecodeError, or UnicodeDecodeError on bad UTF-8
            continue
        if not isinstance(entry, dict):
            continue
        kind = entry.get("kind")
        path = entry.get("k")
        if isinstance(kind, bool) or not isinstance(kind, int):
            continue
        if kind == 0:
            state = entry.get("v")
            continue
        if kind not in (1, 2, 3) or not isinstance(path, list):
            continue
        if not path:
            if kind == 1:
                state = entry.get("v")
            continue
        if not isinstance(state, (dict, list)):
            state = {}
        found = _walk(state, path)
        if found is None:
            continue
        parent, key = found
        if kind == 1:
            _set(parent, key, entry.get("v"))
        elif kind == 3:
            _delete(parent, key)
        else:
            _push(parent, key, entry)
    return state


def _key(container: dict | list, seg: Any) -> str | int | None:
    """``seg`` as a key of ``container`` (JavaScript semantics: ``obj[0]`` is ``obj["0"]``)."""
    if isinstance(seg, bool):
        return None
    if isinstance(container, dict):
        return seg if isinstance(seg, str) else str(seg) if isinstance(seg, int) else None
    if isinstance(seg, str) and seg.isdigit():
        seg = int(seg)
    return seg if isinstance(seg, int) and 0 <= seg <= len(container) else None


def _walk(root: dict | list, path: list) -> tuple[dict | list, str | int] | None:
    """The container that holds the last segment of ``path``, creating missing ones."""
    cur: Any = root
    for seg, nxt in itertools.pairwise(path):
        key = _key(cur, seg)
        if key is None:
            return None
        child = cur.get(key) if isinstance(cur, dict) else cur[key] if key < len(cur) else None
        if child is None:
            child = [] if isinstance(nxt, int) and not isinstance(nxt, bool) else {}
            _set(cur, key, child)
        elif not isinstance(child, (dict, list)):
            return None
        cur = child
    key = _key(cur, path[-1])
    return None if key is None else (cur, key)


def _set(parent: Any, key: Any, value: Any) -> None:
    if isinstance(parent, dict) or key < len(parent):
        parent[key] = value
    else:
        parent.append(value)


def _delete(parent: Any, key: Any) -> None:
    if isinstance(parent, dict):
        parent.pop(key, None)
    elif key < len(parent):
        del parent[key]


def _push(parent: Any, key: Any, entry: dict) -> None:
    if isinstance(parent, dict):
        arr = parent.get(key)
    else:
        arr = parent[key] if key < len(parent) else None
    if not isinstance(arr, list):
        arr = []
        _set(parent, key, arr)
    cut = entry.get("i")
    if isinstance(cut, int) and not isinstance(cut, bool) and cut >= 0:
        del arr[cut:]
    items = entry.get("v")
    if isinstance(items, list):
        arr.extend(items)
    elif items is not None:
        arr.append(items)


def load_session(data: bytes, jsonl: bool) -> dict[str, Any]:
    """The session object of a file's bytes; :class:`SkipLine` when there is none."""
    if jsonl:
        session = replay_change_log(data)
    else:
        try:
            session = _decoder.decode(data)
        except ValueError as exc:  # msgspec.DecodeError, or UnicodeDecodeError on bad UTF-8
            raise SkipLine(f"not JSON: {exc}") from None
        if isinstance(session, dict) and session.get("kind") == 0 and "requests" not in session:
            session = session.get("v")  # one change-log line saved as .json
    if not isinstance(session, dict):
        raise SkipLine("not a chat session object")
    return session


# -- the adapter -----------------------------------------------------------------------------------


def as_dict(value: Any) -> dict:
    """``value`` when it is a JSON object, else {} (lenient reading of VS Code's files)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []

