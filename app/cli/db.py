from __future__ import annotations

import asyncio

import typer

from app.db.embedded import EmbeddedPostgres
from app.errors import ConfigError
from app.settings import Settings, load_settings, mask_url

db = typer.Typer(
    help=(
        "Manage the database. start/stop/url act on the embedded PostgreSQL (used when "
        "DEVLOG_DATABASE_URL is unset); status and migrate work with either."
    ),
    no_args_is_help=True,
)


def _cluster(settings: Settings) -> EmbeddedPostgres:
    if settings.database_url:
        raise ConfigError(
            f"DEVLOG_DATABASE_URL is set ({mask_url(settings.database_url)}); "
            "`devlog db start|stop|url` manage only the embedded PostgreSQL"
        )
    return EmbeddedPostgres(settings.resolved_data_dir(), settings.embedded_port)


@db.command()
def start() -> None:
    """Start the embedded PostgreSQL and keep it running until `devlog db stop`."""
    from app.cli import setup_logging

    settings = load_settings()
    setup_logging(settings.log_level)
    cluster = _cluster(settings)
    _, started = cluster.start(manual=True)
    typer.echo(("started " if started else "already running, now kept running: ")
               + cluster.status().describe())


@db.command()
def stop() -> None:
    """Stop the embedded PostgreSQL (a running `devlog serve` loses its database)."""
    cluster = _cluster(load_settings())
    typer.echo("stopped" if cluster.stop() else "not running")


@db.command()
def status() -> None:
    """Show where the database is and whether it answers; exit code 1 when it does not."""
    from app.db import engine
    from app.db.migrate import pending_migrations

    settings = load_settings()
    if not settings.database_url:
        cluster = _cluster(settings)
        st = cluster.status()
        typer.echo(st.describe())
        if not st.running:
            raise typer.Exit(1)
        url = cluster.url()
    else:
        url = settings.database_url
        typer.echo(f"database: {mask_url(url)}")

    async def check() -> list[str]:
        await engine.wait_for_database(url, timeout=min(settings.db_connect_timeout, 5))
        engine.configure(url)
        return await pending_migrations()

    pending = asyncio.run(check())
    typer.echo("reachable; migrations: " + (f"{len(pending)} pending" if pending else "up to date"))


@db.command()
def url(
    masked: bool = typer.Option(False, "--masked", help="Hide the password."),
) -> None:
    """Print the connection URL (with its password unless --masked), e.g. psql "$(devlog db url)"."""
    settings = load_settings()
    value = settings.database_url or _cluster(settings).url()
    typer.echo(mask_url(value) if masked else value)


@db.command()
def migrate() -> None:
    """Apply pending migrations (starting the embedded PostgreSQL for the duration if needed)."""
    from app import lifespan
    from app.cli import setup_logging
    from app.db import engine
    from app.db.migrate import migrate as run_migrations

    settings = load_settings()
    setup_logging(settings.log_level)

    async def run() -> list[str]:
        async with lifespan.database(settings) as database:
            await engine.wait_for_database(database.url, settings.db_connect_timeout)
            engine.configure(database.url)
            return await run_migrations()

    applied = asyncio.run(run())
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied
               else "migrations: up to date")
