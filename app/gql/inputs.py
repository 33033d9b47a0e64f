"""GraphQL input types (filters), converted to the services' msgspec filters."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from app.gql.types.Session import parse_id
from app.services.events import EventFilter
from app.services.sessions import SessionFilter


@strawberry.enum(description="Effective session status.")
class SessionStatus(Enum):
    ACTIVE = "active"
    IDLE = "idle"
    ENDED = "ended"


def _id(value: strawberry.ID | None):  # noqa: ANN202
    return parse_id(value) if value is not None else None


@strawberry.input(description="All conditions must hold.")
class SessionFilterInput:
    agent: list[str] | None = None
    project: strawberry.ID | None = None
    machine: strawberry.ID | None = None
    workspace: strawberry.ID | None = None
    status: SessionStatus | None = None
    since: datetime | None = strawberry.field(default=None, description="Active at or after.")
    until: datetime | None = strawberry.field(default=None, description="Started before.")
    text: str | None = strawberry.field(default=None, description="Substring of any prompt of the session (the title is the first).")
    top_level: bool = strawberry.field(default=False, description="Hide sub-agent sessions.")

    def to_service(self) -> SessionFilter:
        return SessionFilter(
            agent=self.agent, project=_id(self.project), machine=_id(self.machine),
            workspace=_id(self.workspace), status=self.status.value if self.status else None,
            since=self.since, until=self.until, text=self.text or None, top_level=self.top_level)


@strawberry.input(description="All conditions must hold.")
class EventFilterInput:
    session: strawberry.ID | None = None
    agent: list[str] | None = None
    kinds: list[str] | None = None
    project: strawberry.ID | None = None
    machine: strawberry.ID | None = None
    workspace: strawberry.ID | None = None
    tool_name: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def to_service(self) -> EventFilter:
        return EventFilter(
            session=_id(self.session), agent=self.agent, kinds=self.kinds,
            project=_id(self.project), machine=_id(self.machine), workspace=_id(self.workspace),
            tool_name=self.tool_name, status=self.status, since=self.since, until=self.until)
