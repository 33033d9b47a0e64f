from __future__ import annotations

from pathlib import Path

import typer

graphql = typer.Typer(help="The GraphQL contract.", no_args_is_help=True)


@graphql.command()
def schema(
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    check: Path = typer.Option(
        None, "--check", help="Exit 1 if this file differs from the schema (for CI)."
    ),
) -> None:
    """Print the GraphQL schema (SDL) generated from the code."""
    from app.gql.schema import sdl

    text = sdl()
    if check is not None:
        current = check.read_text(encoding="utf-8") if check.exists() else ""
        if current != text:
            typer.echo(f"{check} is out of date: run `devlog graphql schema -o {check}`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{check} is up to date")
        return
    if output is not None:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")
    else:
        typer.echo(text, nl=False)
