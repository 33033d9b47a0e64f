"""The agent-log collector (runs on each developer machine).

Adapters per agent, discovery, tailing with cursors, a local SQLite outbox and the GraphQL
sender. It never imports ``app``; the server imports only the wire contract.
"""

from __future__ import annotations

from functools import cache


@cache
def version() -> str:
    """The installed devlog version (dead letters remember which collector tried them last)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("devlog")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0.0.0+source"
