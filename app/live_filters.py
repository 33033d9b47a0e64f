"""The filters of live subscriptions, as bus selectors (see ``app/bus.py``).

Frozen and hashable: subscribers with the same filter share one selection per delivery. Each
selection runs over what the delivery has already indexed: a session filter looks at that
session's events only, session conditions (agent, project, machine, workspace) are decided once
per session of the batch, not once per event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from app.bus import Delivery
from app.services.events import EventFilter, EventRecord
from app.services.sessions import SessionRecord


def _set(values: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(values) if values else None


@dataclass(frozen=True, slots=True)
class SessionConditions:
    """Conditions on the session record; all must hold (None: any)."""

    agents: frozenset[str] | None = None
    project: uuid.UUID | None = None
    machine: uuid.UUID | None = None
    workspace: uuid.UUID | None = None

    def holds(self, s: SessionRecord) -> bool:
        return ((self.agents is None or s.agent in self.agents)
                and (self.project is None or s.project_id == self.project)
                and (self.machine is None or s.machine_id == self.machine)
                and (self.workspace is None or s.workspace_id == self.workspace))


@dataclass(frozen=True, slots=True)
class EventSelector:
    """eventAdded's filter: the batch's events that match, in commit order (``since`` ≤ ts <
    ``until``, as the ``events`` query reads them). With any condition at all, an event whose
    session is not in the delivery is left out (its session conditions cannot be checked)."""

    needs_events: ClassVar[bool] = True

    session: uuid.UUID | None = None
    where: SessionConditions = SessionConditions()
    kinds: frozenset[str] | None = None
    tool_name: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(cls, f: EventFilter | None) -> EventSelector:
        if f is None:
            return cls()
        return cls(session=f.session,
                   where=SessionConditions(agents=_set(f.agent), project=f.project,
                                           machine=f.machine, workspace=f.workspace),
                   kinds=_set(f.kinds), tool_name=f.tool_name or None, status=f.status or None,
                   since=f.since, until=f.until)

    def select(self, d: Delivery) -> list[EventRecord]:
        if self == _EVERY_EVENT:
            return d.events  # shared, as it is
        if self.session is not None:
            s = d.sessions.get(self.session)
            if s is None or not self.where.holds(s):
                return []
            candidates = d.by_session.get(self.session, [])
            if self._only_session():
                return candidates
            return [e for e in candidates if self._event_holds(e)]
        matched = {sid for sid, s in d.sessions.items() if self.where.holds(s)}
        if not matched:
            return []
        return [e for e in d.events if e.session_id in matched and self._event_holds(e)]

    def _only_session(self) -> bool:
        return (self.kinds is None and self.tool_name is None and self.status is None
                and self.since is None and self.until is None)

    def _event_holds(self, e: EventRecord) -> bool:
        return ((self.kinds is None or e.kind in self.kinds)
                and (self.tool_name is None or e.tool_name == self.tool_name)
                and (self.status is None or e.status == self.status)
                and (self.since is None or e.ts >= self.since)
                and (self.until is None or e.ts < self.until))


_EVERY_EVENT = EventSelector()


@dataclass(frozen=True, slots=True)
class SessionSelector:
    """sessionUpdated's filter: the batch's sessions (with their new rollups) that match."""

    needs_events: ClassVar[bool] = False

    session: uuid.UUID | None = None
    where: SessionConditions = SessionConditions()

    def select(self, d: Delivery) -> list[SessionRecord]:
        if self.session is not None:
            s = d.sessions.get(self.session)
            return [s] if s is not None and self.where.holds(s) else []
        return [s for s in d.sessions.values() if self.where.holds(s)]
