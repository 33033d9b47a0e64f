"""The Strawberry schema. ``devlog graphql schema`` prints it; graphql/schema.graphql holds it."""

from __future__ import annotations

import strawberry
from strawberry.extensions import QueryDepthLimiter

from app.gql.queries import Query
from app.gql.subscriptions import Subscription

MAX_QUERY_DEPTH = 12

schema = strawberry.Schema(
    query=Query,
    subscription=Subscription,
    extensions=[lambda: QueryDepthLimiter(max_depth=MAX_QUERY_DEPTH)],
)


def sdl() -> str:
    return schema.as_str().rstrip() + "\n"
