from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Annotated, Optional

import typer

from app.settings import load_settings


def up(
    port: Annotated[
        Optional[int], typer.Option(help="Server port [default: 3200, or DEVLOG_PORT].")
    ] = None,
    collect: Annotated[
        bool, typer.Option("--collect/--no-collect", help="Also run the collector on this machine.")
    ] = True,
) -> None:
    """Run the server and a collector of this machine's agent logs together (single user).

    The server runs on the embedded PostgreSQL unless DEVLOG_DATABASE_URL is set. The collector runs as a child process (`devlog collect`) and stops with the server. Its
    first run backfills every log it finds; later runs read only what is new.
    """
    from app.cli import setup_logging
    from app.server import serve as run

    settings = load_settings(port=port)
    setup_logging(settings.log_level)
    child: subprocess.Popen | None = None
    if collect:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        host = f"[{host}]" if ":" in host else host
        child = subprocess.Popen([sys.executable, "-m", "app", "collect", "--server",
                                  f"http://{host}:{settings.port}/graphql"])
    try:
        asyncio.run(run(settings))
    finally:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
