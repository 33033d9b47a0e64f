"""What a working directory is: its git repository (remote, branch, commit) or just a folder.

Reads ``.git`` directly (no ``git`` subprocess per file): HEAD, the config's remotes and refs.
Answers are cached for a minute, since branches move.
"""

from __future__ import annotations

import configparser
import time
from pathlib import Path

from collector.wire import ProjectRef

_TTL = 60.0


def _git_dir(start: Path) -> tuple[Path, Path] | None:
    """(work tree, git dir) of the repository containing ``start``."""
    for folder in (start, *start.parents):
        dot = folder / ".git"
        try:
            if dot.is_dir():
                return folder, dot
            if dot.is_file():
                text = dot.read_text(encoding="utf-8", errors="replace").strip()
                if text.startswith("gitdir:"):
                    target = Path(text[len("gitdir:"):].strip())
                    return folder, target if target.is_absolute() else (folder / target).resolve()
        except OSError:
            return None
    return None


def _common_dir(git_dir: Path) -> Path:
    """Worktrees keep config and refs in the main repository (``commondir``)."""
    try:
        rel = (git_dir / "commondir").read_text().strip()
    except OSError:
        return git_dir
    path = Path(rel)
    return path if path.is_absolute() else (git_dir / path).resolve()


def _remote(common: Path) -> str | None:
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(common / "config", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    remotes = [s for s in parser.sections() if s.startswith('remote "')]
    remotes.sort(key=lambda s: s != 'remote "origin"')
    for section in remotes:
        url = parser.get(section, "url", fallback=None)
        if url:
            return url.strip()
    return None


def _resolve_ref(git_dir: Path, common: Path, ref: str) -> str | None:
    for base in (git_dir, common):
        try:
            return (base / ref).read_text().strip() or None
        except OSError:
            continue
    try:
        for line in (common / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref:
                return sha
    except OSError:
        pass
    return None


def describe(path: str) -> ProjectRef:
    folder = Path(path)
    found = _git_dir(folder) if folder.is_absolute() else None
    if found is None:
        return ProjectRef(path=path, name=folder.name or path)
    top, git_dir = found
    common = _common_dir(git_dir)
    branch = commit = None
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        head = ""
    if head.startswith("ref:"):
        ref = head[4:].strip()
        branch = ref.removeprefix("refs/heads/")
        commit = _resolve_ref(git_dir, common, ref)
    elif head:
        commit = head
    return ProjectRef(remote=_remote(common), path=str(top), name=top.name or str(top),
                      branch=branch[:255] if branch else None,
                      commit=commit[:64] if commit else None)


class ProjectCache:
    """``project_of(cwd)`` for the parsers, remembered per folder for a minute."""

    def __init__(self, ttl: float = _TTL) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[float, ProjectRef]] = {}

    def __call__(self, path: str) -> ProjectRef:
        now = time.monotonic()
        hit = self._cache.get(path)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        ref = describe(path)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[path] = (now, ref)
        return ref
