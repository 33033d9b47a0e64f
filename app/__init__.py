"""devlog server: settings, database, ingest, GraphQL API, jobs and CLI."""

from __future__ import annotations

from functools import cache


@cache
def _version() -> str:
    # importlib.metadata costs ~70 ms to import: only when the version is asked for (the
    # collector's commands start without it).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("devlog")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0.0.0+source"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
