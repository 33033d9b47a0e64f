"""``devlog prices``: the model-price table LLM-call costs are computed from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from app.cli.keys import _with_db
from app.errors import DevlogError

prices = typer.Typer(
    help=(
        "Model prices (USD per million tokens) that LLM-call costs are computed from. "
        "A call's cost reported by its agent is kept; otherwise it is computed at ingest with "
        "the price valid at the call's time, or flagged 'unpriced' when its model has none. "
        "Prices come from the genai-prices snapshot shipped with devlog and can be updated "
        "offline from a JSON file ('devlog prices load FILE', format in README). A model name "
        "nobody lists can be priced as another ('devlog prices alias NAME MODEL')."
    ),
    no_args_is_help=True,
)


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _date(value: datetime | None, empty: str = "") -> str:
    if value is None:
        return empty
    return f"{value:%Y-%m-%d}" if (value.hour, value.minute, value.second) == (0, 0, 0) \
        else f"{value:%Y-%m-%d %H:%M}"


_RATES = ("input", "output", "cache\nread", "cache\nwrite", "1h\nwrite", "reas-\noning")


def _rates(r) -> list[str]:
    get = r.get if isinstance(r, dict) else lambda k: getattr(r, k)
    write = get("cache_write_5m") if get("cache_write_5m") is not None else get("cache_write")
    return [_money(get("input")), _money(get("output")), _money(get("cache_read")), _money(write),
            _money(get("cache_write_1h")), _money(get("reasoning"))]


def _price_table(records, *, history: bool) -> Table:
    """Models (or one model's dated prices), long-context tiers as indented rows."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("model" if not history else "valid", overflow="fold", ratio=1)
    for c in _RATES:
        table.add_column(c, justify="right", no_wrap=True)
    for r in records:
        if history:
            label = f"{_date(r.valid_from, 'always')} → {_date(r.valid_to, 'now')}"
        else:
            label = f"{r.provider}/{r.model}"
        table.add_row(label, *_rates(r))
        for t in r.tiers:
            merged = {**{k: getattr(r, k) for k in ("input", "output", "cache_read",
                                                     "cache_write", "cache_write_5m",
                                                     "cache_write_1h", "reasoning")}, **t}
            table.add_row(f"  prompt > {t['above']:,}", *_rates(merged), style="dim")
    return table


@prices.command("list")
def list_(
    provider: Annotated[str | None, typer.Option(
        "--provider", "-p", help="Only this provider (anthropic, openai, google, …).")] = None,
    search: Annotated[str | None, typer.Option(
        "--search", "-s", help="Only models whose id or name contains this text.")] = None,
) -> None:
    """List the price of each model valid today (USD per million tokens)."""
    from app.services import prices as service

    records = _with_db(lambda: service.list_prices(provider=provider, search=search))
    console = Console()
    if not records:
        console.print("no prices match")
        return
    console.print(_price_table(records, history=False))
    console.print(f"{len(records)} models, USD per million tokens; sources: "
                  + ", ".join(sorted({r.source for r in records})))


@prices.command()
def show(
    model: Annotated[str, typer.Argument(help="A model name as agents report it, e.g. "
                                         "claude-sonnet-4-5-20250929 or openai/gpt-5.")],
    provider: Annotated[str | None, typer.Option(
        "--provider", "-p", help="The provider the agent reported (anthropic, openai, "
                                 "github-copilot, …), as ingest would use it.")] = None,
) -> None:
    """Show the priced model a name resolves to, and its prices over time.

    The name is resolved as ingest resolves it: exact ids and aliases, patterns, dated ids (claude-sonnet-4-5-20250929), provider prefixes (anthropic/…, openai/…).
    """
    from app.services import prices as service

    found = _with_db(lambda: service.resolve(model, provider))
    if found is None:
        raise DevlogError(f"no price for model {model!r}: its LLM calls are flagged 'unpriced' "
                          "(add one with 'devlog prices load FILE', or price it as another "
                          "model with 'devlog prices alias NAME MODEL')")
    console = Console()
    first = found.prices[-1] if found.prices else None
    console.print(f"{model} → "
                  + (f"priced as {found.priced_as} (your alias) → " if found.priced_as else "")
                  + f"[bold]{found.provider}/{found.model}[/bold]"
                  + (f" ({first.name})" if first and first.name else ""), highlight=False)
    if first:
        console.print(f"matches: {first.match}", highlight=False)
        console.print(f"source: {first.source}, loaded {first.loaded_at:%Y-%m-%d %H:%M}",
                      highlight=False)
    console.print("USD per million tokens; a long-context tier prices the whole call once its "
                  "prompt (input + cache) is above the threshold")
    console.print(_price_table(found.prices, history=True))


@prices.command()
def load(
    file: Annotated[Path, typer.Argument(help="A JSON price file (the format of the shipped "
                                         "app/pricing/snapshot.json; see README).")],
) -> None:
    """Load prices from a JSON file, offline.

    Each (provider, model, valid_from) in the file is added or replaced; other prices stay. Models set by a file are kept over later shipped snapshots. New calls are priced with them within seconds; run 'devlog prices recompute' to re-price calls already stored.
    """
    from app.pricing import price_file
    from app.services import prices as service

    price_file.read(file)  # a bad file fails before the database is touched
    result = _with_db(lambda: service.load(file))
    parts = []
    if result.models or not result.aliases:
        parts.append(f"{result.prices} prices of {result.models} models"
                     + (f" ({result.replaced} replaced)" if result.replaced else ""))
    if result.aliases:
        parts.append(f"{result.aliases} alias{'es' if result.aliases != 1 else ''}")
    typer.echo(f"loaded {' and '.join(parts)} from {result.source}")


@prices.command()
def alias(
    name: Annotated[str | None, typer.Argument(
        help="A model name as agents report it, that no price lists (e.g. aide-gpt-5).",
        metavar="NAME", show_default=False)] = None,
    model: Annotated[str | None, typer.Argument(
        help="The model to price it as: a name that has a price (see 'devlog prices show').",
        metavar="MODEL", show_default=False)] = None,
    list_: Annotated[bool, typer.Option("--list", "-l", help="List the aliases.")] = False,
    remove: Annotated[bool, typer.Option(
        "--remove", "-r", help="Remove the alias NAME (its calls are priced by name again).")] = False,
) -> None:
    """Price a model name nobody lists as another model: devlog prices alias NAME MODEL.

    Calls of NAME (whatever its case, with or without a provider/ prefix) are priced as MODEL, with MODEL's dated prices, from now on, in every server process; an alias wins over a price NAME may have. 'devlog prices alias --list' lists them, 'devlog prices alias --remove NAME' removes one. Run 'devlog prices recompute' to re-price calls already stored. Aliases also load from a price file's "aliases" (see README).
    """
    from app.services import prices as service

    console = Console(highlight=False)
    if remove:
        if name is None or model is not None:
            raise DevlogError("usage: devlog prices alias --remove NAME")
        if not _with_db(lambda: service.remove_alias(name)):
            raise DevlogError(f"no alias {name.strip().lower()!r} (see 'devlog prices alias --list')")
        console.print(f"removed the alias {name.strip().lower()}; run 'devlog prices recompute' to "
                      "re-price its stored calls", markup=False)
        return
    if list_ or name is None:
        if name is not None:
            raise DevlogError("usage: devlog prices alias --list")
        aliases = _with_db(service.list_aliases)
        if not aliases:
            console.print("no aliases (add one: devlog prices alias NAME MODEL)", markup=False)
            return
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("name", "priced as", "price used", "source", "set"):
            table.add_column(col, overflow="fold")
        for a in aliases:
            table.add_row(a.name, a.model, a.resolves_to or "(no price any more)", a.source,
                          f"{a.loaded_at:%Y-%m-%d %H:%M}")
        console.print(table)
        return
    if model is None:
        raise DevlogError("usage: devlog prices alias NAME MODEL (or --list, or --remove NAME)")
    made = _with_db(lambda: service.set_alias(name, model))
    console.print(f"{made.name} is priced as {made.model} ({made.resolves_to}) from now on; run "
                  "'devlog prices recompute' to re-price its stored calls", markup=False)


@prices.command()
def recompute(
    since: Annotated[datetime | None, typer.Option(
        "--since", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
        help="Only LLM calls from this date (UTC) on; default all.")] = None,
) -> None:
    """Re-price stored LLM calls with the current prices.

    Reported costs are kept; computed and unpriced calls get the current price, then the sessions' costs and the usage rollups of that time range are updated. Works in SQL, one day of calls at a time.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from app.services import recompute as service

    start = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True),
                  transient=False) as bar:
        task = bar.add_task("recomputing costs (days)", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = _with_db(lambda: service.recompute(start, progress=advance))
    typer.echo(f"{result.events} LLM calls re-priced, {result.sessions} sessions updated"
               + (f", {result.rollup_hours} rollup hours re-aggregated"
                  if result.rollup_hours is not None and result.rollup_hours >= 0 else ""))
    if result.unpriced:
        shown = ", ".join(result.unpriced[:10]) + (" …" if len(result.unpriced) > 10 else "")
        typer.echo(f"unpriced models (costs left empty): {shown}", err=True)
