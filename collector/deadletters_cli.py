"""``devlog collect dead-letters …``: list, show, retry and drop the events the server would
not take (mounted by ``collector.cli``; the table is ``collector.deadletters``)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated

import typer
from rich.table import Table

dead_letters = typer.Typer(
    help=(
        "Events the server would not take, kept aside in the collector's buffer so they never "
        "block the others: 'rejected' ones the server refused with a reason, 'failed' ones a "
        "batch-level server error was isolated to. They are sent again automatically after the "
        "collector or the server is upgraded; `retry` sends them now, `drop` removes them."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Kind(str, Enum):
    rejected = "rejected"
    failed = "failed"


KindOpt = Annotated[
    Kind | None,
    typer.Option("--kind", "-k", help="Only 'rejected' (refused by the server, with its reason) or "
                                      "'failed' (a batch-level error isolated to them)."),
]
IdsArg = Annotated[
    list[str] | None,
    typer.Argument(metavar="[ID]...", help="Event ids (as `list` shows them; a unique prefix is enough).",
                   show_default=False),
]


def _open():
    from collector.cli import _settings, out
    from collector.outbox import Outbox, outbox_path

    settings = _settings()
    path = outbox_path(settings)
    if not path.exists():
        out.print(f"the collector has not run yet (no buffer at {path}): no dead letters")
        raise typer.Exit(0)
    return settings, path, Outbox(path)


def _ids(outbox, ids: list[str]) -> list[bytes]:
    from collector.cli import err

    found, bad = outbox.dead.resolve(ids)
    if bad:
        err.print(f"devlog: no single dead letter matches {', '.join(bad)} "
                  "(see `devlog collect dead-letters list`)", markup=False, highlight=False)
        raise typer.Exit(2)
    return found


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


@dead_letters.command("list")
def list_(
    kind: KindOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many.")] = 50,
) -> None:
    """List dead letters, most recently tried first: id, agent, kind, attempts, first and last
    try, the server's reason."""
    from collector.cli import out

    _settings, _path, outbox = _open()
    try:
        rows = outbox.dead.latest(limit, kind=kind.value if kind else None)
        counts = outbox.dead.count_by_kind()
    finally:
        outbox.close()
    if not rows:
        out.print("no dead letters" + (f" of kind {kind.value}" if kind else ""))
        return
    table = Table()
    for col in ("id", "agent", "kind", "tries", "first tried", "last tried", "reason"):
        table.add_column(col, overflow="fold", no_wrap=col in ("id", "first tried", "last tried"))
    for d in rows:
        table.add_row(str(d.id), d.agent, d.kind + (" (due)" if d.due else ""), str(d.attempts),
                      _stamp(d.first_at), _stamp(d.last_at), d.reason)
    out.print(table)
    total = sum(counts.values())
    out.print(f"{total:,} dead letter(s): " + ", ".join(f"{n:,} {k}" for k, n in sorted(counts.items()))
              + (f" (showing {len(rows):,})" if len(rows) < total else ""), markup=False)
    out.print("`devlog collect dead-letters show ID` prints one with its event; `retry` sends them "
              "again; `drop` removes them.", markup=False, highlight=False)


@dead_letters.command()
def show(event_id: Annotated[str, typer.Argument(metavar="ID", help="Event id (or a unique prefix).")]) -> None:
    """Print one dead letter: its facts, the server's reason and the event as it would be sent."""
    from collector.cli import _when, out

    _settings, _path, outbox = _open()
    try:
        (found,) = _ids(outbox, [event_id])
        dead, body = outbox.dead.get(uuid.UUID(bytes=found))
    finally:
        outbox.close()
    for label, value in (("id", dead.id), ("agent", dead.agent), ("kind", dead.kind),
                         ("reason", dead.reason), ("attempts", dead.attempts),
                         ("first tried", _when(str(dead.first_at))),
                         ("last tried", _when(str(dead.last_at))),
                         ("by collector", dead.collector_version or "an older version"),
                         ("server version", dead.server_version or "unknown"),
                         ("due to be sent", "yes" if dead.due else "no")):
        out.print(f"{label + ':':16}{value}", markup=False, highlight=False)
    out.print("event:", markup=False)
    try:
        text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        text = body.decode("utf-8", "replace")
    out.print(text, markup=False, highlight=False, soft_wrap=True)


@dead_letters.command()
def retry(
    ids: IdsArg = None,
    kind: KindOpt = None,
    later: Annotated[bool, typer.Option(
        "--later", help="Only mark them: the running collector sends them within a second.")] = False,
) -> None:
    """Send dead letters again now (all, or the ids given): those the server takes leave the
    list, the others stay with one attempt more and its new reason."""
    import asyncio

    from collector.cli import err, out

    settings, path, outbox = _open()
    try:
        chosen = _ids(outbox, ids) if ids else None
        marked = outbox.dead.mark_due(chosen, kind=kind.value if kind else None)
        before = outbox.dead.count()
    finally:
        outbox.close()
    if not marked:
        out.print("no dead letters to send")
        return
    if later:
        out.print(f"{marked:,} dead letter(s) marked: the collector sends them as soon as it runs")
        return
    from collector.machine import this_machine
    from collector.sender import Sender

    async def send() -> tuple[bool, str | None]:
        async with Sender(settings, path, this_machine()) as sender:
            done = await sender.send_dead_letters()
            return done, sender.last_error

    done, error = asyncio.run(send())
    from collector.outbox import Outbox

    outbox = Outbox(path)
    try:
        left = outbox.dead.count()
        still = outbox.dead.latest(1)
    finally:
        outbox.close()
    delivered = before - left
    out.print(f"tried {marked:,} dead letter(s) on {settings.server_url}: {delivered:,} delivered",
              markup=False, highlight=False)
    if not done:
        err.print(f"[yellow]the server could not be reached ({error}); the rest stay due: the "
                  "collector sends them once it answers", highlight=False)
        raise typer.Exit(1)
    if left and still:
        out.print(f"{left:,} still kept (latest reason: {still[0].reason})", markup=False,
                  highlight=False)


@dead_letters.command()
def drop(
    ids: IdsArg = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter (of --kind, if given).")] = False,
    kind: KindOpt = None,
) -> None:
    """Remove dead letters for good (the ids given, or --all): those events are never sent."""
    from collector.cli import err, out

    if not ids and not all_:
        err.print("devlog: name the dead letters to drop (ids from `devlog collect dead-letters "
                  "list`), or pass --all", markup=False, highlight=False)
        raise typer.Exit(2)
    _settings, _path, outbox = _open()
    try:
        chosen = _ids(outbox, ids) if ids else None
        removed = outbox.dead.drop(chosen, kind=kind.value if kind else None)
    finally:
        outbox.close()
    out.print(f"removed {removed:,} dead letter(s)")
