from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.settings import load_settings


def serve(
    host: Annotated[
        str | None, typer.Option(help="Listen address [default: 127.0.0.1, or DEVLOG_HOST].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port [default: 3200, or DEVLOG_PORT].")
    ] = None,
    migrate: Annotated[
        bool | None,
        typer.Option("--migrate/--no-migrate",
                     help="Apply pending migrations at start [default: DEVLOG_MIGRATE_ON_START, on]."),
    ] = None,
) -> None:
    """Run the devlog server (GraphQL API, GraphiQL, health probes).

    The GraphQL API is at /graphql (HTTP and WebSocket), GraphiQL in a browser at the same
    address, /healthz and /readyz beside it.

    With no DEVLOG_DATABASE_URL, a private PostgreSQL is started in the data directory and
    stopped again when the server exits. Stop with Ctrl-C or SIGTERM.
    """
    from app.cli import setup_logging
    from app.server import serve as run

    settings = load_settings(host=host, port=port, migrate_on_start=migrate)
    setup_logging(settings.log_level)
    asyncio.run(run(settings))
