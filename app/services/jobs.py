"""What the scheduled jobs did last (``job_state``, shared by every server process)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.db.reads import fetch
from app.jobs.scheduler import job_specs
from app.settings import Settings


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    every_seconds: float
    last_run: datetime | None
    last_ok: datetime | None
    last_duration_ms: int | None
    last_error: str | None
    last_result: str | None
    runs: int
    watermark: datetime | None


async def list_jobs(settings: Settings) -> list[JobRecord]:
    rows = {r["name"]: r for r in await fetch("SELECT * FROM job_state")}
    out = []
    for spec in job_specs(settings):
        r = rows.get(spec.name)
        out.append(JobRecord(
            name=spec.name, description=spec.description, every_seconds=spec.every.total_seconds(),
            last_run=r and r["last_finished_at"], last_ok=r and r["last_ok_at"],
            last_duration_ms=r and r["last_duration_ms"], last_error=r and r["last_error"],
            last_result=r and r["last_result"], runs=r["runs"] if r else 0,
            watermark=r and r["watermark"]))
    return out
