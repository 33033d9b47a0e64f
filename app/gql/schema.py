"""The Strawberry schema. ``devlog graphql schema`` prints it; graphql/schema.graphql holds it."""

from __future__ import annotations

import strawberry
from strawberry.extensions import AddValidationRules, ParserCache, ValidationCache
from strawberry.extensions.query_depth_limiter import create_validator
from strawberry.schema.config import StrawberryConfig

from app.gql.live_results import SharedResultsExecutor
from app.gql.mutations import Mutation
from app.gql.queries import Query
from app.gql.scalars.BigInt import BigInt, BigIntDefinition
from app.gql.scalars.EventBatch import EventBatch, EventBatchDefinition
from app.gql.subscriptions import Subscription

MAX_QUERY_DEPTH = 12

# One rule class for the process: Strawberry's ValidationCache keys on the tuple of validation
# rules, so a rule class created per request (QueryDepthLimiter's default) defeats the cache.
_DEPTH_RULE = create_validator(MAX_QUERY_DEPTH, None, None)


class DepthLimit(AddValidationRules):
    """Reject operations nested deeper than MAX_QUERY_DEPTH (introspection excluded)."""

    def __init__(self) -> None:
        super().__init__([_DEPTH_RULE])


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    config=StrawberryConfig(scalar_map={EventBatch: EventBatchDefinition, BigInt: BigIntDefinition}),
    # live subscriptions: equal operations share one result per event (app/gql/live_results.py)
    execution_context_class=SharedResultsExecutor,
    extensions=[
        # Clients (the collector, the dashboard) send the same few documents over and over;
        # parse and validation are most of a small operation's cost, so both are cached
        # (bounded LRU, shared across requests).
        DepthLimit,
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
    ],
)


def sdl() -> str:
    return schema.as_str().rstrip() + "\n"
