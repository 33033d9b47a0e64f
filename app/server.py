"""``devlog serve``: pre-flight checks, then uvicorn on a socket we bound ourselves.

Binding first and resolving the database before the ASGI server starts is what lets a taken
port or an unreachable database end with one clear line instead of a traceback.
"""

from __future__ import annotations

import errno
import logging
import socket
import time

import uvicorn

from app import __version__, lifespan
from app.asgi import create_app
from app.errors import DevlogError, PortInUse
from app.settings import Settings

log = logging.getLogger("devlog.server")


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY from the listening socket. uvloop does not set
    # it on connections of a socket handed to it, and without it a response written in two
    # parts waits for the client's delayed ACK: ~40 ms on every kept-alive request (measured).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"cannot listen on {host}:{port}: the port is in use "
                "(another devlog serve? choose one with --port or DEVLOG_PORT)"
            ) from None
        raise DevlogError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def serve(settings: Settings) -> None:
    t0 = time.perf_counter()
    sock = bind_socket(settings.host, settings.port)
    try:
        async with lifespan.database(settings) as db:
            await lifespan.prepare(db, settings)
            app = create_app(settings, db)
            config = uvicorn.Config(
                app, lifespan="on", log_config=None, access_log=False,
                log_level=settings.log_level, server_header=False,
                timeout_graceful_shutdown=5, ws_ping_interval=20,
                # live subscriptions push many small frames: per-connection deflate cost a sixth
                # of their CPU and tens of KB per connection for little gain (bench/live.py)
                ws_per_message_deflate=False,
            )
            server = uvicorn.Server(config)
            shown = f"[{settings.host}]" if ":" in settings.host else settings.host
            log.info("devlog %s listening: dashboard http://%s:%d/ · GraphQL /graphql "
                     "(prepared in %.2fs)", __version__, shown, settings.port,
                     time.perf_counter() - t0)
            await server.serve(sockets=[sock])
            if not server.started:
                raise DevlogError("the server did not start (see the log above)")
    finally:
        sock.close()
