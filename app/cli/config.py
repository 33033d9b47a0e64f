from __future__ import annotations

import json
import os

import typer
from rich.console import Console
from rich.table import Table

from app.settings import config_file_path, env_name, field_docs, load_settings

config = typer.Typer(help="Inspect devlog's settings.", no_args_is_help=True)


@config.command()
def show(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    docs: bool = typer.Option(False, "--docs", help="Add a column explaining each setting."),
) -> None:
    """Print the effective settings (secrets masked), where each comes from and what it does."""
    settings = load_settings()
    values = settings.masked()
    if as_json:
        typer.echo(json.dumps(values, indent=2, default=str))
        return
    path = config_file_path()
    file_keys: set[str] = set()
    if path.is_file():
        import tomllib

        try:
            file_keys = set(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            pass
    table = Table(title=f"devlog settings (config file: {path}"
                        f"{'' if path.is_file() else ', not present'})")
    table.add_column("setting", style="bold")
    table.add_column("variable", style="dim")
    table.add_column("value", overflow="fold")
    table.add_column("from")
    if docs:
        table.add_column("meaning", overflow="fold")
    for name, doc in field_docs().items():
        var = env_name(name)
        source = "env" if var in os.environ or (name == "database_url" and os.environ.get(
            "DATABASE_URL")) else ("file" if name in file_keys else "default")
        value = values[name]
        row = [name, var, "" if value is None else str(value), source]
        table.add_row(*row, *([doc] if docs else []))
    Console().print(table)


@config.command()
def path() -> None:
    """Print the path of the TOML config file (DEVLOG_CONFIG overrides it)."""
    typer.echo(str(config_file_path()))
