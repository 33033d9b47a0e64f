"""Process and readiness probes: ``/healthz`` (the process answers) and ``/readyz`` (the
database answers). Both return JSON; ``/readyz`` answers 503 when the database is unavailable."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State
from litestar.response import Redirect
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_301_MOVED_PERMANENTLY,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from app import __version__
from app.services import health


@get("/healthz", sync_to_thread=False, include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@get("/readyz", include_in_schema=False)
async def readyz(state: State) -> Response[dict[str, object]]:
    rec = await health.check(embedded=state.embedded)
    body = {"status": "ok" if rec.ok else "unavailable", "database": rec.database,
            "storage": rec.storage, "version": rec.version}
    return Response(body, status_code=HTTP_200_OK if rec.ok else HTTP_503_SERVICE_UNAVAILABLE)


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False)
def favicon() -> Redirect:
    return Redirect("/static/img/favicon.svg", status_code=HTTP_301_MOVED_PERMANENTLY)
