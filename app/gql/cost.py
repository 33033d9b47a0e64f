"""The cost of a GraphQL query: how many values its answer may hold, estimated before it runs.

Every field counts once per object it is asked on, so a list multiplies everything below it:
``sessions(first: 50) { edges { node { id title } } }`` costs 1 (sessions) + 50 (edges) + 50
(node) + 100 (id, title) = 201. A list's size is its ``first`` argument (clamped as the
resolver clamps it), the page size of the connection it belongs to (``edges``), or the
estimate in ``LIST_SIZES`` (a typical size for lists without pages) — every list field of the schema has one (a test checks), so a new
list field must say how long it can be. Usage series are estimated from their range and
bucket: one point per bucket, times ``GROUP_FACTOR`` per ``groupBy`` dimension. A field that
runs a statement for each object it is asked on (``PER_OBJECT_STATEMENTS``) costs
``STATEMENT_COST`` more per object, and a field that may hold a long text (``LONG_TEXT``)
counts ``TEXT_COST`` values.

The walk visits each fragment once per field it is spread in (a fragment spread twice in a
fragment spread twice… costs its real, exponential size without taking exponential time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_composite_type,
)
from graphql.execution.values import get_argument_values, get_variable_values

from app.services.pagination import MAX_PAGE

Args = dict[str, Any]
GROUP_FACTOR = 4  # groups per groupBy dimension (a few agents, a handful of models…)


def _first(cap: int, default: int) -> Callable[[Args, Args], int]:
    def size(args: Args, _parent: Args) -> int:
        value = args.get("first", default)
        return max(1, min(int(value), cap)) if isinstance(value, int) else default
    return size


def _fixed(n: int) -> Callable[[Args, Args], int]:
    return lambda _args, _parent: n


def _page(_args: Args, parent: Args) -> int:
    """Edges of a connection: the page size of the field that returned it."""
    return _first(MAX_PAGE, 100)(parent, {})


def _get(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _points(_args: Args, parent: Args) -> int:
    """A usage series: buckets in the range × GROUP_FACTOR per groupBy dimension."""
    rng = parent.get("range")
    since, until = _get(rng, "since"), _get(rng, "until") or datetime.now(UTC)
    bucket = str(getattr(parent.get("bucket"), "value", parent.get("bucket")) or "day").lower()
    width = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
    try:
        buckets = math.ceil((until - since) / width.get(bucket, width["day"])) + 1
    except TypeError:  # no valid range: the resolver refuses it anyway
        buckets = 1
    groups = len(parent.get("group_by") or parent.get("groupBy") or [])
    return max(1, buckets) * GROUP_FACTOR ** groups


# Fields that may hold a long text (an event's content, command and error, its raw payload:
# up to DEVLOG_MAX_EVENT_BYTES each): each value counts TEXT_COST, so a page of 500 events with
# their content is half the default budget, not 1 %.
TEXT_COST = 100
LONG_TEXT = frozenset({"Event.content", "Event.payload", "Event.command", "Event.error"})

# Fields whose resolver runs a statement of its own for each object (not batched by a
# DataLoader): each call also costs STATEMENT_COST, so `sessions(first: 500) { … events }` — 500
# statements at once — is refused while one session's events are not.
STATEMENT_COST = 1_000
PER_OBJECT_STATEMENTS = frozenset({"Session.events"})

# "Type.field" -> its size from (its arguments, the arguments of the field that returned its
# object): the clamped `first` for pages (a worst case), a typical size for lists that are not
# paginated (a project's machines, a machine's workspaces: a few). Lists of scalars and enums
# (models, groupBy) count as one value.
LIST_SIZES: dict[str, Callable[[Args, Args], int]] = {
    "Query.projects": _first(500, 100),
    "Query.machines": _first(500, 100),
    "Query.toolStats": _fixed(100),
    "Query.modelStats": _fixed(50),
    "Query.prices": lambda args, _p: 20 if args.get("model") else 1000,
    "Query.jobs": _fixed(10),
    "Query.priceAliases": _fixed(50),  # a user's own aliases: a handful
    "SessionConnection.edges": _page,
    "EventConnection.edges": _page,
    "Session.children": _fixed(10),
    "Project.machines": _fixed(5),
    "Project.workspaces": _fixed(5),
    "Machine.workspaces": _fixed(5),
    "Workspace.sessions": _first(100, 20),
    "Overview.eventsPerMinute": _fixed(60),
    "Overview.topTools": _fixed(8),
    "Overview.topModels": _fixed(8),
    "Plans.claudeBlocks": _fixed(10),
    "Plans.codexWindows": _fixed(10),
    "ToolStat.topFiles": lambda _a, parent: max(0, min(int(parent.get("top_files", 5)), 50)),
    "UsageReport.points": _points,
    "IngestResult.rejected": _fixed(100),
}


def object_list_fields(schema: GraphQLSchema) -> set[str]:
    """Every "Type.field" whose type is a list of objects (what LIST_SIZES must cover)."""
    out = set()
    for name, t in schema.type_map.items():
        if name.startswith("__") or not isinstance(t, GraphQLObjectType):
            continue
        for field_name, field in t.fields.items():
            inner = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if isinstance(inner, GraphQLList) and is_composite_type(get_named_type(inner)):
                out.add(f"{name}.{field_name}")
    return out


class _Walk:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 variables: Any) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        # (fragment, id of the field it is spread in) -> cost per parent object
        self.memo: dict[tuple[str, int], int] = {}

    def selection_set(self, node: SelectionSetNode | None, parent_type: Any, parent_args: Args,
                      parent_key: int) -> int:
        """The cost of this selection set for one object of ``parent_type``."""
        if node is None or not isinstance(parent_type, GraphQLObjectType):
            return 0  # scalars; interfaces and unions do not occur in this schema
        total = 0
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                total += self.field(sel, parent_type, parent_args)
            elif isinstance(sel, InlineFragmentNode):
                t = (self.schema.get_type(sel.type_condition.name.value)
                     if sel.type_condition else parent_type)
                total += self.selection_set(sel.selection_set, t, parent_args, parent_key)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                key = (name, parent_key)
                if key not in self.memo:
                    fragment = self.fragments.get(name)
                    self.memo[key] = 0  # a cycle (refused by validation) costs nothing more
                    if fragment is not None:
                        t = self.schema.get_type(fragment.type_condition.name.value)
                        self.memo[key] = self.selection_set(fragment.selection_set, t,
                                                            parent_args, parent_key)
                total += self.memo[key]
        return total

    def field(self, node: FieldNode, parent_type: GraphQLObjectType, parent_args: Args) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0  # __typename, introspection
        definition: GraphQLField | None = parent_type.fields.get(name)
        if definition is None:
            return 0
        try:
            args = get_argument_values(definition, node, self.variables)
        except GraphQLError:
            args = {}  # the resolver will refuse them
        t = definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else definition.type
        size = 1
        if isinstance(t, GraphQLList) and is_composite_type(get_named_type(t)):
            sizer = LIST_SIZES.get(f"{parent_type.name}.{name}")
            size = sizer(args, parent_args) if sizer else MAX_PAGE
        below = self.selection_set(node.selection_set, get_named_type(t), args, id(node))
        key = f"{parent_type.name}.{name}"
        if key in LONG_TEXT:
            return TEXT_COST
        own = STATEMENT_COST if key in PER_OBJECT_STATEMENTS else 0
        return own + size * (1 + below)


def query_cost(schema: GraphQLSchema, operation: OperationDefinitionNode,
               fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any] | None) -> int | None:
    """The estimated number of values in the answer; None when the variables are invalid
    (execution refuses them before any resolver runs)."""
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {},
                                  max_errors=1)
    if isinstance(coerced, list):
        return None
    root = schema.get_root_type(operation.operation)
    return _Walk(schema, fragments, coerced).selection_set(operation.selection_set, root, {}, 0)
