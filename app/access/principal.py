"""Who is calling, and what that caller may do.

A principal is resolved once per request (or WebSocket connection) from the credential it
presented, if any, and from where the server listens. It is the only input of
:func:`app.access.policy.authorise`.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass


class Action(enum.Enum):
    """What a request asks to do. Every GraphQL root field and every route maps to one."""

    OPEN = "open"  # answers anyone who may reach the server (the `health` probe, static files)
    READ = "read"  # read what agents did: queries, pages, live streams, exports
    INGEST = "ingest"  # store events


@dataclass(frozen=True, slots=True)
class KeyRef:
    """The API key a caller authenticated with."""

    id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: anonymous (``key`` is None) or holding a valid API key.

    ``loopback``: the server listens on loopback only, where reads are open to anonymous
    callers (the Host allow-list and the cross-site checks keep web pages out).
    ``keys_exist``: some active key exists (then ingest needs a key, even on loopback).
    ``bad_key``: a credential was presented but is not a valid key (wrong, or revoked).
    """

    key: KeyRef | None
    loopback: bool
    keys_exist: bool
    bad_key: bool = False

    @property
    def anonymous(self) -> bool:
        return self.key is None

    def may(self, action: Action) -> bool:
        if action is Action.OPEN or self.key is not None:
            return True
        if action is Action.READ:
            return self.loopback
        if action is Action.INGEST:
            return self.loopback and not self.keys_exist
        return False  # an action this table does not know is refused
