"""The context rows a batch touches — machines, projects, workspaces, sessions — derived from its
events, and the statement arguments that write them (``statements.OPEN`` and ``CLOSE``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from app.ingest import identity
from app.ingest.records import PreparedEvent
from app.ingest.session_rollups import EMPTY, SessionRollup, rollup_columns
from collector.wire import Event, MachineInfo


@dataclass(slots=True)
class SessionRow:
    id: str
    agent: str
    native_id: str
    parent: str | None = None
    parent_native: str | None = None
    project: uuid.UUID | None = None
    machine: uuid.UUID | None = None
    workspace: uuid.UUID | None = None
    agent_version: str | None = None
    git_branch: str | None = None
    git_commit: str | None = None
    last_ts: datetime | None = None


@dataclass(slots=True)
class Context:
    """The context rows a batch touches, derived from its events."""

    machine_seen: dict[str, datetime] = field(default_factory=dict)
    projects: dict[uuid.UUID, tuple[str, str, str | None, datetime]] = field(default_factory=dict)
    workspaces: dict[uuid.UUID, list] = field(default_factory=dict)
    sessions: dict[str, SessionRow] = field(default_factory=dict)


def derive_context(events: list[PreparedEvent]) -> Context:
    """The machine, project, workspace and session rows of the batch.

    Every event folds into them in batch order (later facts win; a session's facts come from
    its latest event, per field the latest one that has it). Consecutive events of one session
    with the same context (the usual case) fold as one run: all their facts are equal, so only
    the run's latest time matters.
    """
    ctx = Context()
    run: Event | None = None
    run_sid: str | None = None
    run_ts: datetime | None = None
    for p in events:
        e = p.event
        if (run is not None and e.session == run.session and e.agent == run.agent
                and e.machine == run.machine and e.workspace == run.workspace
                and e.project == run.project and e.agent_version == run.agent_version
                and e.parent_session == run.parent_session):
            if e.ts > run_ts:  # type: ignore[operator]  # noqa: PLR1730 (no call per event)
                run_ts = e.ts
            continue
        if run is not None:
            _fold(ctx, run, run_sid, run_ts)  # type: ignore[arg-type]
        run, run_sid, run_ts = e, p.session_id, e.ts
    if run is not None:
        _fold(ctx, run, run_sid, run_ts)  # type: ignore[arg-type]
    return ctx


def _fold(ctx: Context, e: Event, sid: str, ts: datetime) -> None:
    """Fold one run of events (the facts of ``e``, latest time ``ts``) into the context."""
    mkey = e.machine
    seen = ctx.machine_seen.get(mkey)
    ctx.machine_seen[mkey] = ts if seen is None else max(seen, ts)
    projects = ctx.projects
    pid = None
    if e.project is not None:
        found = identity.project_key(e.project.remote, e.project.path or e.workspace, mkey)
        if found:
            key, name = found
            pid = identity.project_id(key)
            prev = projects.get(pid)
            projects[pid] = (key, e.project.name or name, e.project.remote,
                             max(prev[3], ts) if prev else ts)
    elif e.workspace:
        key, name = identity.project_key(None, e.workspace, mkey)  # type: ignore[misc]
        pid = identity.project_id(key)
        prev = projects.get(pid)
        projects[pid] = (key, name, None, max(prev[3], ts) if prev else ts)
    wid = None
    if e.workspace:
        wid = identity.workspace_id(mkey, e.workspace)
        prev_ws = ctx.workspaces.get(wid)
        if prev_ws is None or ts >= prev_ws[6]:
            ctx.workspaces[wid] = [wid, identity.machine_id(mkey), pid, e.workspace,
                                   e.project.branch if e.project else None,
                                   e.project.commit if e.project else None, ts]
    row = ctx.sessions.get(sid)
    if row is None:
        row = ctx.sessions[sid] = SessionRow(id=sid, agent=e.agent, native_id=e.session)
    if row.last_ts is None or ts >= row.last_ts:
        row.last_ts = ts
        row.machine = identity.machine_id(mkey)
        row.project = pid or row.project
        row.workspace = wid or row.workspace
        row.agent_version = e.agent_version or row.agent_version
        if e.project is not None:
            row.git_branch = e.project.branch or row.git_branch
            row.git_commit = e.project.commit or row.git_commit
    if e.parent_session:
        row.parent = identity.session_key(e.agent, e.parent_session)
        row.parent_native = e.parent_session


@dataclass(slots=True)
class ContextArgs:
    inserts: tuple  # OPEN's $1–$24
    updates: tuple  # _CLOSE's $1–$17


def context_args(ctx: Context, machines: list[MachineInfo]) -> ContextArgs:
    facts = {m.key: m for m in machines}
    keys = sorted(ctx.machine_seen, key=identity.machine_id)
    f = [facts.get(k) for k in keys]
    mids = [identity.machine_id(k) for k in keys]
    hostnames = [(m.hostname or k) if m else k for k, m in zip(keys, f)]
    usernames = [m.username if m else None for m in f]
    oss = [m.os if m else None for m in f]
    versions = [m.os_version if m else None for m in f]
    arches = [m.arch if m else None for m in f]
    kinds = [m.kind if m else "local" for m in f]
    seen = [ctx.machine_seen[k] for k in keys]
    projects = sorted(ctx.projects.items())
    pids = [k for k, _ in projects]
    remotes = [v[2] for _, v in projects]
    p_seen = [v[3] for _, v in projects]
    ws = [ctx.workspaces[k] for k in sorted(ctx.workspaces)]
    wcols = [list(c) for c in zip(*ws)] if ws else [[] for _ in range(7)]
    sessions = ctx.sessions
    parents = {row.parent: (row.agent, row.parent_native) for row in sessions.values()
               if row.parent and row.parent not in sessions}
    todo = sorted(parents)
    return ContextArgs(
        inserts=(mids, keys, hostnames, usernames, oss, versions, arches, kinds, seen,
                 pids, [v[0] for _, v in projects], [v[1] for _, v in projects], remotes, p_seen,
                 *wcols,
                 todo, [parents[p][0] for p in todo], [parents[p][1] for p in todo]),
        updates=(mids, hostnames, usernames, oss, versions, arches, kinds, seen,
                 [m is not None for m in f],
                 pids, remotes, p_seen,
                 wcols[0], wcols[2], wcols[4], wcols[5], wcols[6]),
    )


def session_args(ctx: Context, rollups: dict[str, SessionRollup] | None) -> tuple:
    """OPEN's $25–$51: every session of the batch in id order, with the rollups it gets if it
    is new to the database (none: zeros, as the column defaults)."""
    rows = [ctx.sessions[k] for k in sorted(ctx.sessions)]
    rs = [rollups[r.id] for r in rows] if rollups is not None else [EMPTY] * len(rows)
    return (
        [r.id for r in rows], [r.agent for r in rows], [r.native_id for r in rows],
        [r.parent for r in rows], [r.project for r in rows], [r.machine for r in rows],
        [r.workspace for r in rows], [r.agent_version for r in rows],
        [r.git_branch for r in rows], [r.git_commit for r in rows],
        *rollup_columns(rs, with_files=True, with_title_ts=False),
    )
