"""The Strawberry schema. ``devlog graphql schema`` prints it; graphql/schema.graphql holds it."""

from __future__ import annotations

import strawberry
from strawberry.extensions import ValidationCache
from strawberry.schema.config import StrawberryConfig

from app.access.graphql import Authorise
from app.gql.errors import MaskInternalErrors
from app.gql.limits import OperationLimits

from app.gql.live_results import SharedResultsExecutor
from app.gql.mutations import Mutation
from app.gql.queries import Query
from app.gql.scalars.BigInt import BigInt, BigIntDefinition
from app.gql.scalars.EventBatch import EventBatch, EventBatchDefinition
from app.gql.subscriptions import Subscription

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    config=StrawberryConfig(scalar_map={EventBatch: EventBatchDefinition, BigInt: BigIntDefinition}),
    # long lists take turns on the event loop (app/gql/cooperative.py); live subscriptions:
    # equal operations share one result per event (app/gql/live_results.py)
    execution_context_class=SharedResultsExecutor,
    extensions=[
        Authorise,  # the access policy of every root field (app/access/graphql.py)
        # Size, depth, root fields, aliases, cost and argument limits (app/gql/limits.py),
        # which also parses with a bounded LRU cache. Clients send the same few documents over
        # and over; parse and validation are most of a small operation's cost, so both are
        # cached (shared across requests; the limit rule class is created once per process).
        OperationLimits,
        lambda: ValidationCache(maxsize=512),
        MaskInternalErrors,  # a server fault's text never reaches the client (app/gql/errors.py)
    ],
)


def sdl() -> str:
    return schema.as_str().rstrip() + "\n"
