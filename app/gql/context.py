"""Per-request GraphQL context: the app's runtime facts, plus Litestar's request/websocket."""

from __future__ import annotations

from typing import TypeAlias

import strawberry
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from litestar.datastructures import State
from strawberry.litestar import BaseContext

from app.bus import Bus
from app.gql.loaders import Loaders
from app.settings import Settings


class Context(BaseContext, kw_only=True):
    settings: Settings
    embedded: bool
    loaders: Loaders
    bus: Bus | None = None
    scheduler: AsyncIOScheduler | None = None
    connection_params: dict | None = None  # graphql-transport-ws connection_init payload


async def get_context(state: State) -> Context:
    return Context(settings=state.settings, embedded=state.embedded, loaders=Loaders(),
                   bus=state.get("bus"), scheduler=state.get("scheduler"))


Info: TypeAlias = strawberry.Info[Context, None]
