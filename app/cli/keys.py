from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from app.settings import load_settings

keys = typer.Typer(
    help=(
        "API keys for ingest. Once a key exists, ingestEvents needs 'Authorization: Bearer <key>'; "
        "off loopback every read needs one too. Keys are stored hashed and shown once."
    ),
    no_args_is_help=True,
)
T = TypeVar("T")


def _with_db(fn: Callable[[], Awaitable[T]]) -> T:
    from app import lifespan

    settings = load_settings()

    async def run() -> T:
        async with lifespan.database(settings) as db:
            await lifespan.prepare(db, settings)
            async with lifespan.pool(db, settings):
                return await fn()

    return asyncio.run(run())


@keys.command()
def create(name: str = typer.Argument(..., help="A label, e.g. the machine or team using it.")) -> None:
    """Create a key and print it (this is the only time it is shown)."""
    from app.services import keys as service

    record, secret = _with_db(lambda: service.create(name))
    typer.echo(secret)
    typer.echo(f"created key {record.prefix}… ({record.name}); store it now, it is not shown again",
               err=True)


@keys.command("list")
def list_() -> None:
    """List keys (prefix, name, created, last used, revoked)."""
    from app.services import keys as service

    records = _with_db(service.list_keys)
    table = Table()
    for col in ("prefix", "name", "created", "last used", "revoked"):
        table.add_column(col)
    for r in records:
        table.add_row(r.prefix + "…", r.name, f"{r.created_at:%Y-%m-%d %H:%M}",
                      f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "never",
                      f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "")
    Console().print(table if records else "no keys: ingest is open on loopback")


@keys.command()
def revoke(key: str = typer.Argument(..., help="The key's name, prefix (as listed) or id.")) -> None:
    """Revoke a key; clients using it are refused from then on, and the live streams (SSE,
    WebSocket subscriptions) opened with it end within seconds."""
    from app.errors import DevlogError
    from app.services import keys as service

    done = _with_db(lambda: service.revoke(key.rstrip("…")))
    if not done:
        raise DevlogError(f"no active key named or starting with {key!r}")
    for r in done:
        typer.echo(f"revoked {r.prefix}… ({r.name})")
