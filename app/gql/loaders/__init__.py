"""Per-request DataLoaders: each batches the keys of one event-loop tick into one service call.

Caching is off: a subscription's context lives as long as its WebSocket, and cached rows would
go stale; batching (what prevents N+1 queries) does not need the cache.
"""

from __future__ import annotations

import uuid

from strawberry.dataloader import DataLoader

from app.services import projects, sessions


class Loaders:
    def __init__(self) -> None:
        def make(fn):  # noqa: ANN001, ANN202
            return DataLoader(load_fn=fn, cache=False)

        self.session_by_id: DataLoader[uuid.UUID, sessions.SessionRecord | None] = make(
            sessions.sessions_by_ids)
        self.children_by_parent = make(sessions.children_by_parent_ids)
        self.sessions_by_workspace = make(sessions.latest_by_workspace_ids)
        self.project_by_id = make(projects.projects_by_ids)
        self.machine_by_id = make(projects.machines_by_ids)
        self.workspace_by_id = make(projects.workspaces_by_ids)
        self.machines_by_project = make(projects.machines_by_project_ids)
        self.workspaces_by_machine = make(projects.workspaces_by_machine_ids)
        self.workspaces_by_project = make(projects.workspaces_by_project_ids)
