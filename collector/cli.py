"""``devlog collect …``: the collector's command line (mounted by ``app.cli``)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from collector.config import AGENTS, ConfigError, load_collector_settings

collect = typer.Typer(
    help=(
        "Collect AI coding agents' logs (Claude Code, Codex CLI, GitHub Copilot) and send them "
        "to a devlog server.\n\nWith no subcommand: backfill what is new, then tail the logs "
        "live until stopped (Ctrl-C or SIGTERM flush what they can; the rest waits in the local "
        "buffer). Settings: the \\[collector] table of the config file and DEVLOG_COLLECTOR_* "
        "variables (see `devlog collect config`)."
    ),
    invoke_without_command=True,
    rich_markup_mode="rich",
    # Also run on its own (app.cli.main's fast path for `devlog collect`): as when mounted.
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
out = Console(width=None if sys.stdout.isatty() else 160)

AgentOpt = Annotated[
    list[str] | None,
    typer.Option("--agent", "-a", help=f"Only this agent (repeatable): {', '.join(AGENTS)}."),
]


def _settings(agents: list[str] | None = None, **overrides):
    try:
        if agents:
            overrides["agents"] = agents
        return load_collector_settings(**overrides)
    except ConfigError as exc:
        err.print(f"devlog: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr, force=True)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)


@collect.callback()
def run(
    ctx: typer.Context,
    agent: AgentOpt = None,
    server: Annotated[str | None, typer.Option(help="Server GraphQL URL \\[default: server_url setting].")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every skipped line.")] = False,
) -> None:
    """Backfill what is new, then tail the agents' logs live until stopped."""
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from collector.runner import Collector

    settings = _settings(agent, server_url=server)
    _logging(verbose)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Collector(settings).run(stop)

    asyncio.run(main())


@collect.command()
def backfill(
    agent: AgentOpt = None,
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Skip log files last written before this day."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Parse and summarise; store and send nothing.")
    ] = False,
    server: Annotated[str | None, typer.Option(help="Server GraphQL URL \\[default: server_url setting].")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every skipped line.")] = False,
) -> None:
    """Read all agent logs once, send them, and summarise per agent.

    What earlier runs (backfill or live) already read is skipped. A large backfill is parsed by
    one worker process per CPU (the workers setting) and sent while it is read. The summary
    counts sessions, events, LLM calls and tokens by bucket of what this run parsed.
    """
    from collector.adapters.base import Context
    from collector.gitinfo import ProjectCache
    from collector.machine import this_machine
    from collector.outbox import Outbox, outbox_path
    from collector.source import PARALLEL_MIN_BYTES, Reader

    settings = _settings(agent, server_url=server)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(message)s", force=True)
    machine = this_machine()
    state = outbox_path(settings)
    outbox = Outbox(state)
    dead_before = outbox.dead.count()
    from collector.adapters import enabled_adapters

    reader = Reader(settings=settings, outbox=outbox,
                    ctx=Context(machine=machine.key, project_of=ProjectCache()),
                    adapters=enabled_adapters(settings.agents), dry_run=dry_run)
    cutoff = since.replace(tzinfo=UTC).timestamp() if since else None
    files = []
    for adapter, path in reader.discover():
        try:
            st = path.stat()
        except OSError:
            continue
        if cutoff is None or st.st_mtime >= cutoff:
            files.append((adapter, path, st))
    todo = 0
    for adapter, path, st in files:
        row = outbox.file(str(path))
        todo += st.st_size - (row.offset if row and adapter.shape == "lines" else 0)

    import asyncio

    async def deliver(on_sent) -> bool:
        from collector.sender import Sender  # aiohttp: imported only to send

        async with Sender(settings, state, machine) as sender:
            sender.on_sent = on_sent
            return await sender.drain(attempts=5)

    skipped = sent = 0
    failed = False
    if todo >= PARALLEL_MIN_BYTES and len(files) > 1:
        # Before any other thread starts (progress display, sender): the workers can be forked.
        reader.start_workers(min(reader.workers(), len(files)))
    background = None
    try:
        with _progress() as progress:
            t_files = progress.add_task("files", total=len(files), unit="")
            t_bytes = progress.add_task("bytes", total=max(todo, 1), unit="bytes")
            t_events = progress.add_task("events parsed", total=None, unit="")
            reader.on_progress = lambda b, e: (progress.advance(t_bytes, b), progress.advance(t_events, e))
            reader.on_file = lambda: progress.advance(t_files)
            if not dry_run:
                from collector.background import BackgroundSender

                t_sent = progress.add_task("events sent", total=outbox.pending(), unit="")

                def on_sent(n: int) -> None:
                    progress.advance(t_sent, n)

                def on_commit(n: int) -> None:
                    progress.update(t_sent, total=(progress.tasks[t_sent].total or 0) + n)
                    background.wake()

                # Sending starts with the first events read, not after the last.
                background = BackgroundSender(settings, state, machine, on_sent=on_sent)
                reader.on_commit = on_commit
                background.start()
            todo_files = [(adapter, path) for adapter, path, _st in files]
            # Files last written before this are finished: their last LLM call is closed.
            quiet_before = time.time() - settings.quiet_seconds
            while True:
                result = reader.scan_many(todo_files, close_before=quiet_before)
                skipped += result.skipped
                if not result.full:
                    break
                # The buffer is full: send all of it (or give up after 5 failures in a row),
                # then read on from the same cursors.
                background.stop()
                if not asyncio.run(deliver(on_sent)):
                    failed = True
                    break
                background.start()
                todo_files = result.remaining
            if background is not None:
                background.stop()
            if not failed:
                progress.update(t_bytes, completed=max(todo, 1))
                if not dry_run and (outbox.pending() or outbox.dead.any_due()):
                    failed = not asyncio.run(deliver(on_sent))
            if not dry_run:
                sent = int(progress.tasks[t_sent].completed)
    finally:
        if background is not None:
            background.stop()
        reader.stop_workers()

    _summary(reader.tally, skipped)
    if dry_run:
        out.print("[dim]dry run: nothing stored or sent")
        return
    left = outbox.pending()
    dead = outbox.dead.count() - dead_before
    outbox.close()
    if dead > 0:
        err.print(f"[yellow]{dead:,} event(s) kept as dead letters: the server would not take them "
                  "(`devlog collect dead-letters list` shows why; they are sent again after an "
                  "upgrade, or by `devlog collect dead-letters retry`)", highlight=False)
    if failed:
        err.print(f"[yellow]{left:,} events wait in the buffer ({state}); `devlog collect` "
                  f"delivers them once {settings.server_url} answers")
        raise typer.Exit(1)
    sent = max(0, sent - dead)  # what left the outbox, less what became dead letters
    out.print(f"sent {sent:,} events to {settings.server_url}" if sent or dead else "nothing new to send")


@collect.command()
def status() -> None:
    """Show files read, events waiting, last delivery and errors, dead letters, per agent.

    Reads the collector's local buffer, so it works while the collector runs or not. A server
    that does not answer shows as an error after stall_seconds (20 s), while the request waits.
    """
    from collector.outbox import Outbox, outbox_path

    settings = _settings()
    state = outbox_path(settings)
    if not state.exists():
        out.print(f"the collector has not run yet (no buffer at {state})")
        return
    outbox = Outbox(state)
    files = outbox.files()
    pending = outbox.pending_by_agent()
    meta = outbox.meta()
    table = Table(title=f"devlog collector → {settings.server_url}")
    for col in ("agent", "files", "read", "of", "events", "skipped", "waiting", "files with errors"):
        table.add_column(col, justify="left" if col == "agent" else "right")
    for agent in sorted({f.agent for f in files} | set(pending)):
        mine = [f for f in files if f.agent == agent]
        read = sum(f.offset if f.offset else f.size for f in mine)
        total = sum(_size(f.path) for f in mine)
        table.add_row(agent, f"{len(mine):,}", _bytes(read), _bytes(total),
                      f"{sum(f.events for f in mine):,}", f"{sum(f.skipped for f in mine):,}",
                      f"{pending.get(agent, 0):,}", f"{sum(1 for f in mine if f.last_error):,}")
    out.print(table)
    out.print(f"buffer: {state} ({sum(pending.values()):,} waiting"
              f"{', FULL: reading paused' if meta.get('buffer_full') == '1' else ''})")
    out.print(f"delivered: {int(meta.get('delivered') or 0):,} events"
              f" (+{int(meta.get('duplicates') or 0):,} the server already had)"
              f"; last delivery: {_when(meta.get('last_delivery'))}")
    if meta.get("last_error"):
        out.print(f"[red]last error ({_when(meta.get('last_error_at'))}): {meta['last_error']}",
                  markup=True, highlight=False)
    counts = outbox.dead.count_by_kind()
    if counts:
        parts = []
        if counts.get("rejected"):
            parts.append(f"{counts['rejected']:,} event(s) rejected by the server")
        if counts.get("failed"):
            parts.append(f"{counts['failed']:,} event(s) the server failed on alone")
        out.print(f"[yellow]dead letters: {', '.join(parts)} (not delivered, not blocking the "
                  "rest; `devlog collect dead-letters list`), latest:", highlight=False)
        for dead in outbox.dead.latest(5):
            out.print(f"  {dead.agent} {dead.kind}: {dead.reason} ({_when(str(dead.last_at))}, "
                      f"{dead.attempts} attempt(s))", markup=False, highlight=False)
    errors = [f for f in files if f.last_error]
    for f in errors[:5]:
        out.print(f"  {f.path}: {f.last_error}", markup=False)


from collector.deadletters_cli import dead_letters  # noqa: E402 (uses this module's helpers)

collect.add_typer(dead_letters, name="dead-letters")


@collect.command("config")
def show_config() -> None:
    """Print the effective collector settings (API key masked) and what each one does."""
    settings = _settings()
    from collector.config import config_path, env_name

    path = config_path(dict(os.environ))
    table = Table(title=f"collector settings (config file: {path}"
                        f"{'' if path.is_file() else ', not present'}, table \\[collector])")
    for col in ("setting", "variable", "value"):
        table.add_column(col, overflow="fold")
    for name, value in settings.masked().items():
        table.add_row(name, env_name(name), ", ".join(value) if isinstance(value, list) else str(value))
    out.print(table)
    out.print("What each setting does: README.md, section Collector.", markup=False)


@collect.command("install-service")
def install_service(
    no_start: Annotated[bool, typer.Option("--no-start", help="Write the unit; do not start it.")] = False,
) -> None:
    """Run the collector as a user service that starts at login.

    A systemd user unit on Linux, a launchd agent on macOS; on Windows, prints the Task
    Scheduler command to use. The API key is not written into the unit: keep it in the config
    file.
    """
    from collector.service import ServiceError
    from collector.service import install_service as install

    env = {k: v for k, v in os.environ.items() if k.startswith("DEVLOG_")}
    try:
        for line in install(start=not no_start, env=env):
            out.print(line, markup=False, highlight=False)
    except ServiceError as exc:
        err.print(f"devlog: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None


@collect.command("uninstall-service")
def uninstall_service() -> None:
    """Stop and remove the collector's user service."""
    from collector.service import ServiceError
    from collector.service import uninstall_service as uninstall

    try:
        for line in uninstall():
            out.print(line, markup=False, highlight=False)
    except ServiceError as exc:
        err.print(f"devlog: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _summary(tally, skipped: int) -> None:
    table = Table(title="backfill")
    for col in ("agent", "sessions", "events", "LLM calls", "input", "output", "cache read",
                "cache write", "reasoning"):
        table.add_column(col, justify="left" if col == "agent" else "right")
    for agent, t in sorted(tally.items()):
        tok = t.tokens
        table.add_row(agent, f"{len(t.sessions):,}", f"{sum(t.kinds.values()):,}", f"{t.llm_calls:,}",
                      *(f"{tok[b]:,}" for b in ("input", "output", "cache_read", "cache_write",
                                                 "reasoning")))
    if not tally:
        table.add_row("(no new logs)", *[""] * 8)
    out.print(table)
    if skipped:
        out.print(f"[yellow]{skipped:,} line(s) could not be parsed and were skipped "
                  "(run with -v to see them)")


class _Amount(ProgressColumn):
    """Bytes as sizes, counts as numbers ("12 / 40" when the total is known)."""

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "bytes":
            text = f"{_bytes(int(task.completed))} / {_bytes(int(task.total or 0))}"
        elif task.total is not None:
            text = f"{task.completed:,.0f} / {task.total:,.0f}"
        else:
            text = f"{task.completed:,.0f}"
        return Text(text, style="progress.download")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:>14}"), BarColumn(), _Amount(),
                    TimeElapsedColumn(), console=err, disable=not err.is_terminal)


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def _when(value: str | None) -> str:
    if not value:
        return "never"
    try:
        at = float(value)
    except ValueError:
        return value
    ago = time.time() - at
    stamp = datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")
    if ago < 120:
        return f"{stamp} ({ago:.0f} s ago)"
    if ago < 7200:
        return f"{stamp} ({ago / 60:.0f} min ago)"
    return stamp
