"""Big answers take turns with the other requests on the event loop.

graphql-core completes a list of objects in one synchronous loop: 5,000 events with a few fields
each are ~300 ms of work during which the server answers nobody else (measured with
``bench/abuse.py``: a small query's p95 went from 35 ms to 1 s while one client asked for such
pages in a loop). Here a long list of objects is handed to graphql-core as an async iterator
that gives the event loop a turn every slice of completion work (``app.turns``); graphql-core's
async-iterator completion (the one ``@stream`` uses) then interleaves it with other requests.
Short lists, and lists of scalars, are completed as before.

The event loop runs every ready task once per turn, so a query whose ten root fields worked
side by side held the loop for ten slices (and ten record conversions) per turn: a query's root
fields run one after another instead, as a mutation's do. Work inside one field (DataLoaders,
a query per object) still runs side by side, within the field's share of the pool.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLList, get_named_type, is_composite_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.turns import taking_turns

MIN_ITEMS = 64  # shorter lists finish within a slice anyway


class CooperativeExecution(StrawberryGraphQLCoreExecutionContext):
    def execute_root_grouped_field_set(self, root_type: Any, root_value: Any,
                                       grouped_field_set: Any, serially: bool,
                                       position_context: Any) -> Any:
        # A query's root fields run one after another (as a mutation's do): run side by side,
        # ten of them each took one slice per turn of the loop, so a small query waited ten.
        return super().execute_root_grouped_field_set(root_type, root_value, grouped_field_set,
                                                      True, position_context)

    def complete_list_value(self, return_type: GraphQLList, field_details_list: Any, info: Any,
                            path: Any, result: Any, position_context: Any) -> Any:
        if (isinstance(result, (list, tuple)) and len(result) >= MIN_ITEMS
                and is_composite_type(get_named_type(return_type.of_type))):
            result = taking_turns(result)
        return super().complete_list_value(return_type, field_details_list, info, path, result,
                                           position_context)
